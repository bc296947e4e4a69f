"""Scores -> Verdict: thresholds, sensitivity, consecutive detections and cooldown for one camera.

The numbers that give a score meaning come from the model card (its validated defect
threshold); the YAML only moves them, through one ``sensitivity`` knob (0.5 = the card as it
is, higher flags more) and optional per-label overrides, as anomalib does. A score equal to
its threshold is good: NG needs ``score > threshold``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from agent.bundle import Scores

__all__ = ["Decider", "DecisionRules", "Verdict", "apply_sensitivity"]

DEFECT_KEY = "defect"  # the key in ``thresholds`` that overrides the good/defect threshold


def apply_sensitivity(threshold: float, sensitivity: float) -> float:
    """Move a threshold by sensitivity in 0..1: 0.5 keeps it, 1 flags everything, 0 nothing.

    Piecewise linear through (0, 1), (0.5, threshold), (1, 0), so equal steps of the knob
    move the threshold by equal fractions of the room left on each side.
    """
    if not 0.0 <= sensitivity <= 1.0:
        raise ValueError(f"sensitivity must be in 0..1, got {sensitivity}")
    if sensitivity >= 0.5:
        return threshold * (1.0 - sensitivity) * 2.0
    return threshold + (1.0 - threshold) * (0.5 - sensitivity) * 2.0


@dataclass(frozen=True)
class DecisionRules:
    """What decides NG for one camera; built from the card and the config's ``decision`` section."""

    defect_threshold: float  # on the defect score (1 - p(good)), already moved by sensitivity
    label_thresholds: dict[str, float] = field(default_factory=dict)  # on that label's probability
    min_consecutive: int = 1
    cooldown_s: float = 0.0

    @classmethod
    def from_card(
        cls,
        card_defect: float,
        card_per_label: dict[str, float],
        sensitivity: float = 0.5,
        overrides: dict[str, float] | None = None,
        min_consecutive: int = 1,
        cooldown_s: float = 0.0,
    ) -> DecisionRules:
        """Card thresholds, then config overrides (taken as given), then sensitivity on all of them."""
        merged = {DEFECT_KEY: card_defect, **card_per_label, **(overrides or {})}
        moved = {label: apply_sensitivity(t, sensitivity) for label, t in merged.items()}
        defect = moved.pop(DEFECT_KEY)
        return cls(defect, moved, max(1, min_consecutive), max(0.0, cooldown_s))

    def with_threshold(self, label: str, value: float) -> DecisionRules:
        """A copy with one threshold set exactly (the MQTT ``set_threshold`` command)."""
        if label == DEFECT_KEY:
            return DecisionRules(value, self.label_thresholds, self.min_consecutive, self.cooldown_s)
        labels = {**self.label_thresholds, label: value}
        return DecisionRules(self.defect_threshold, labels, self.min_consecutive, self.cooldown_s)


@dataclass(frozen=True)
class Verdict:
    """The decision on one part or frame."""

    ng: bool
    label: str  # the defect label when NG, else the good label (or the top label for models without one)
    score: float  # the evidence for ``label``'s side: defect score when NG, p(label) otherwise
    defect_score: float
    threshold: float  # the threshold the defect score was compared with
    raise_event: bool  # NG and not suppressed by min_consecutive / cooldown
    suppressed: str | None = None  # why an NG raised no event: "consecutive" or "cooldown"

    @property
    def text(self) -> str:
        return "NG" if self.ng else "OK"


class Decider:
    """Stateful per camera: counts NG observations in a row and remembers the last event time."""

    def __init__(self, rules: DecisionRules, good_label: str | None) -> None:
        self.rules = rules
        self.good_label = good_label
        self._streak = 0
        self._last_event_mono: float | None = None

    def decide(self, scores: Scores, mono_time: float) -> Verdict:
        rules = self.rules
        over_label = {
            label: p
            for label, p in scores.probabilities.items()
            if label in rules.label_thresholds
            and label != self.good_label
            and p > rules.label_thresholds[label]
        }
        ng = scores.defect_score > rules.defect_threshold or bool(over_label)
        if not ng:
            self._streak = 0
            ok_label = self.good_label or scores.label
            return Verdict(
                False, ok_label, scores.probabilities.get(ok_label, scores.score), scores.defect_score,
                rules.defect_threshold, raise_event=False,
            )  # fmt: skip
        self._streak += 1
        defects = {k: v for k, v in scores.probabilities.items() if k != self.good_label}
        label = max(over_label or defects or scores.probabilities, key=lambda k: scores.probabilities[k])
        suppressed = None
        if self._streak < rules.min_consecutive:
            suppressed = "consecutive"
        elif self._last_event_mono is not None and mono_time - self._last_event_mono < rules.cooldown_s:
            suppressed = "cooldown"
        else:
            self._last_event_mono = mono_time
        return Verdict(
            True, label, scores.defect_score, scores.defect_score, rules.defect_threshold,
            raise_event=suppressed is None, suppressed=suppressed,
        )  # fmt: skip
