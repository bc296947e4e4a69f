"""Decision: sensitivity moves card thresholds, strict ``>``, per-label thresholds, streaks and cooldown."""

from __future__ import annotations

import itertools
import math

import pytest

from agent.bundle import Scores
from agent.decision import Decider, DecisionRules, apply_sensitivity


def _scores(**probabilities: float) -> Scores:
    """Scores as ModelBundle.classify builds them, for a model whose good label is ``good``."""
    label = max(probabilities, key=lambda k: probabilities[k])
    return Scores(probabilities, label, probabilities[label], 1.0 - probabilities.get("good", 0.0))


def _ng(defect: float) -> Scores:
    """A two-class reading with the given defect score."""
    return _scores(good=1.0 - defect, scratch=defect)


@pytest.mark.parametrize(
    ("threshold", "sensitivity", "expected"),
    [
        (0.3, 0.5, 0.3),  # 0.5 keeps the card's threshold
        (0.3, 1.0, 0.0),  # 1 flags everything above 0
        (0.3, 0.0, 1.0),  # 0 flags nothing (a score can never be > 1)
        (0.3, 0.75, 0.15),  # halfway to 0
        (0.3, 0.25, 0.65),  # halfway to 1
        (0.0, 0.5, 0.0),  # a zero threshold stays zero at 0.5
        (1.0, 0.25, 1.0),  # a threshold already at 1 cannot move up
    ],
)
def test_apply_sensitivity(threshold: float, sensitivity: float, expected: float) -> None:
    assert apply_sensitivity(threshold, sensitivity) == pytest.approx(expected)


@pytest.mark.parametrize(
    "sensitivity",
    [
        -0.01,  # just below the range
        1.01,  # just above
        math.nan,  # not a number is not in 0..1 either
    ],
)
def test_apply_sensitivity_out_of_range_raises(sensitivity: float) -> None:
    with pytest.raises(ValueError, match=r"sensitivity must be in 0\.\.1"):
        apply_sensitivity(0.5, sensitivity)


@pytest.mark.parametrize("threshold", [0.05, 0.3, 0.5, 0.9])
def test_apply_sensitivity_is_monotonic(threshold: float) -> None:
    moved = [apply_sensitivity(threshold, s / 20) for s in range(21)]
    assert all(a >= b for a, b in itertools.pairwise(moved))
    assert all(0.0 <= t <= 1.0 for t in moved)


@pytest.mark.parametrize(
    ("defect", "ng"),
    [
        (0.39, False),  # below the threshold
        (0.40, False),  # equal to the threshold is good (strict >)
        (0.41, True),  # above
    ],
)
def test_defect_threshold_is_strict(defect: float, ng: bool) -> None:
    verdict = Decider(DecisionRules(0.4), "good").decide(_ng(defect), 0.0)
    assert verdict.ng is ng
    assert verdict.text == ("NG" if ng else "OK")
    assert verdict.threshold == 0.4
    assert verdict.defect_score == pytest.approx(defect)
    assert verdict.raise_event is ng


def test_ok_verdict_reports_the_good_label_and_its_probability() -> None:
    verdict = Decider(DecisionRules(0.5), "good").decide(_scores(good=0.8, scratch=0.2), 0.0)
    assert (verdict.ng, verdict.label, verdict.score, verdict.suppressed) == (False, "good", 0.8, None)


def test_ok_verdict_without_good_label_reports_top_label() -> None:
    scores = Scores({"a": 0.7, "b": 0.3}, "a", 0.7, 0.1)
    verdict = Decider(DecisionRules(0.5), None).decide(scores, 0.0)
    assert (verdict.ng, verdict.label, verdict.score) == (False, "a", 0.7)


@pytest.mark.parametrize(
    ("probabilities", "ng", "label"),
    [
        # scratch 0.25 > its 0.2 although the defect score 0.55 is under 0.9; dent (0.30) is more
        # probable but has no threshold crossed, so the verdict names scratch
        ({"good": 0.45, "dent": 0.30, "scratch": 0.25}, True, "scratch"),
        # scratch exactly at its threshold is good
        ({"good": 0.60, "dent": 0.20, "scratch": 0.20}, False, "good"),
        # dent has no per-label threshold: only the defect threshold applies to it
        ({"good": 0.15, "dent": 0.80, "scratch": 0.05}, False, "good"),
        # the defect threshold still works; the most probable defect label is reported
        ({"good": 0.05, "dent": 0.80, "scratch": 0.15}, True, "dent"),
    ],
)
def test_per_label_thresholds(probabilities: dict[str, float], ng: bool, label: str) -> None:
    rules = DecisionRules(0.9, {"scratch": 0.2})
    verdict = Decider(rules, "good").decide(_scores(**probabilities), 0.0)
    assert (verdict.ng, verdict.label) == (ng, label)


def test_threshold_on_the_good_label_is_ignored() -> None:
    rules = DecisionRules(0.9, {"good": 0.1})
    assert not Decider(rules, "good").decide(_scores(good=0.9, scratch=0.1), 0.0).ng


@pytest.mark.parametrize(
    ("sequence", "expected"),
    [
        # three NG in a row: the first two are held back, the third raises, and so does the fourth
        ("NNNN", ["consecutive", "consecutive", None, None]),
        # an OK in between starts the count again
        ("NNONNN", ["consecutive", "consecutive", "ok", "consecutive", "consecutive", None]),
        # never three in a row: no event at all
        ("NNONNO", ["consecutive", "consecutive", "ok", "consecutive", "consecutive", "ok"]),
    ],
)
def test_min_consecutive(sequence: str, expected: list[str | None]) -> None:
    decider = Decider(DecisionRules(0.5, min_consecutive=3), "good")
    got: list[str | None] = []
    for n, step in enumerate(sequence):
        verdict = decider.decide(_ng(0.9 if step == "N" else 0.1), float(n))
        assert verdict.ng is (step == "N")
        assert verdict.raise_event is (verdict.ng and verdict.suppressed is None)
        got.append(verdict.suppressed if verdict.ng else "ok")
    assert got == expected


@pytest.mark.parametrize(
    ("times", "expected"),
    [
        # the window is measured from the last event raised, in monotonic seconds
        ([0.0, 5.0, 9.99, 10.0], [None, "cooldown", "cooldown", None]),
        # a suppressed NG does not restart the window: 10.0 is 10 s after the event at 0.0
        ([0.0, 9.0, 10.0, 15.0, 20.0], [None, "cooldown", None, "cooldown", None]),
        # far apart: all raise
        ([0.0, 100.0, 200.0], [None, None, None]),
    ],
)
def test_cooldown(times: list[float], expected: list[str | None]) -> None:
    decider = Decider(DecisionRules(0.5, cooldown_s=10.0), "good")
    got = [decider.decide(_ng(0.9), t).suppressed for t in times]
    assert got == expected


def test_cooldown_counts_from_the_event_after_the_streak() -> None:
    decider = Decider(DecisionRules(0.5, min_consecutive=2, cooldown_s=10.0), "good")
    got = [decider.decide(_ng(0.9), t).suppressed for t in (0.0, 1.0, 2.0, 11.0)]
    assert got == ["consecutive", None, "cooldown", None]


@pytest.mark.parametrize(
    ("label", "value", "defect", "labels"),
    [
        ("defect", 0.7, 0.7, {"scratch": 0.2}),  # the good/defect threshold
        ("scratch", 0.1, 0.4, {"scratch": 0.1}),  # replaces a label's threshold
        ("dent", 0.3, 0.4, {"scratch": 0.2, "dent": 0.3}),  # adds one
    ],
)
def test_with_threshold(label: str, value: float, defect: float, labels: dict[str, float]) -> None:
    rules = DecisionRules(0.4, {"scratch": 0.2}, min_consecutive=2, cooldown_s=3.0)
    changed = rules.with_threshold(label, value)
    assert (changed.defect_threshold, changed.label_thresholds) == (defect, labels)
    assert (changed.min_consecutive, changed.cooldown_s) == (2, 3.0)
    assert (rules.defect_threshold, rules.label_thresholds) == (0.4, {"scratch": 0.2})  # a copy


@pytest.mark.parametrize(
    ("sensitivity", "overrides", "defect", "labels"),
    [
        # the card as it is
        (0.5, None, 0.4, {"scratch": 0.3, "dent": 0.6}),
        # config overrides replace card values, for a label and for the defect threshold
        (0.5, {"dent": 0.5, "defect": 0.2}, 0.2, {"scratch": 0.3, "dent": 0.5}),
        # an override may name a label the card has no threshold for
        (0.5, {"hole": 0.1}, 0.4, {"scratch": 0.3, "dent": 0.6, "hole": 0.1}),
        # sensitivity then moves all of them, overrides included (0.75 halves each)
        (0.75, {"dent": 0.5}, 0.2, {"scratch": 0.15, "dent": 0.25}),
    ],
)
def test_from_card(
    sensitivity: float, overrides: dict[str, float] | None, defect: float, labels: dict[str, float]
) -> None:
    rules = DecisionRules.from_card(0.4, {"scratch": 0.3, "dent": 0.6}, sensitivity, overrides)
    assert rules.defect_threshold == pytest.approx(defect)
    assert rules.label_thresholds == pytest.approx(labels)


def test_from_card_clamps_streak_and_cooldown() -> None:
    rules = DecisionRules.from_card(0.4, {}, min_consecutive=0, cooldown_s=-5.0)
    assert (rules.min_consecutive, rules.cooldown_s) == (1, 0.0)


def test_from_card_rejects_bad_sensitivity() -> None:
    with pytest.raises(ValueError, match="got 2"):
        DecisionRules.from_card(0.4, {}, sensitivity=2)
