"""A model bundle on the device: the ``.tflite`` file, its card, a loaded interpreter.

Loading refuses a card that does not describe the file (sha256, tensor shapes and
dtypes) so a half-copied update can never run with the wrong labels or thresholds.
Outputs are found by their signature name (``probabilities``, ``heatmap``,
``anomaly_score``), falling back to their rank for models without a signature, never
by position: the converter orders a multi-output model's outputs its own way.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import KW_ONLY, dataclass, field
from pathlib import Path
from typing import TypeVar

import numpy as np

from agent.detection import Detection, DetectionHead, label_scores
from agent.model import TFLiteModel
from agent.modelcard import (
    AnomalyNormalization,
    ModelCard,
    SeriesModelCard,
    TensorSpec,
    card_path_for,
    load_card,
)
from agent.preprocess import Transform, preprocess
from agent.status import ExitStatus, InspectError

__all__ = [
    "ANOMALY_SCORE",
    "HEATMAP",
    "PROBABILITIES",
    "Heatmap",
    "ModelBundle",
    "Scores",
    "find_output",
    "load_bundle",
    "open_verified",
    "scores_output",
]

PROBABILITIES, HEATMAP, ANOMALY_SCORE = "probabilities", "heatmap", "anomaly_score"
_TASKS = ("classification", "anomaly")


@dataclass(frozen=True)
class Heatmap:
    """A model's heatmap for one image, in its own units, with what maps it back to the frame.

    ``values`` (h, w) covers the model input (``input_size`` = (width, height)) evenly;
    ``transform`` maps model-input pixels to the pixels of the image given to ``classify``.
    """

    values: np.ndarray
    input_size: tuple[int, int]
    transform: Transform
    threshold: float  # pixel threshold in the heatmap's units (from the card)
    kind: str
    normalization: AnomalyNormalization | None = None  # anomaly maps: raw units -> 0..1

    def unit_values(self) -> tuple[np.ndarray, float]:
        """The values on a 0..1 scale, and the pixel threshold on that scale.

        Defect maps and class activations are 0..1 already; anomaly maps go through the
        card's normalisation, so their pixel threshold lands at 0.5 as the image score's does.
        """
        if self.normalization is None:
            return np.clip(self.values, 0.0, 1.0), self.threshold
        return np.clip(self.normalization.shifted(self.values, self.threshold), 0.0, 1.0), 0.5


@dataclass(frozen=True)
class Scores:
    """Class probabilities for one image plus the good/defect reading of them."""

    probabilities: dict[str, float]
    label: str  # the most probable class
    score: float  # its probability
    defect_score: float  # 1 - p(good): 0 = surely good, 1 = surely defective
    # Detectors: every detection kept, boxes in the pixels of the image given to ``classify``.
    detections: tuple[Detection, ...] = field(default=())
    heatmap: Heatmap | None = field(default=None, compare=False)  # when the model has one


def find_output(outputs: list[TensorSpec], name: str, rank: int) -> int | None:
    """Index of the output with this signature name, else the only output of this rank."""
    for i, spec in enumerate(outputs):
        if spec.signature_name == name:
            return i
    same_rank = [i for i, spec in enumerate(outputs) if len(spec.shape) == rank]
    return same_rank[0] if len(same_rank) == 1 else None


def scores_output(outputs: list[TensorSpec]) -> int | None:
    """The output carrying the scores: probabilities (classifier) or anomaly_score."""
    found = find_output(outputs, PROBABILITIES, 2)
    return found if found is not None else find_output(outputs, ANOMALY_SCORE, 2)


@dataclass
class ModelBundle:
    card: ModelCard
    model: TFLiteModel
    _: KW_ONLY  # how the outputs are read differs by task: always named
    scores_index: int = 0
    heatmap_index: int | None = None
    detector: DetectionHead | None = None  # set for task "detection"

    def classify(self, image: np.ndarray) -> tuple[Scores, Transform]:
        """A BGR/grey uint8 frame -> scores, and the transform from model to frame pixels."""
        tensor, transform = preprocess(image, self.card.input)
        if self.detector is not None:
            return self._detect(self.detector, tensor, transform), transform
        outputs = self.model.run(tensor)
        heatmap = None
        if self.heatmap_index is not None and self.card.heatmap is not None:
            spec = self.card.heatmap
            heatmap = Heatmap(
                outputs[self.heatmap_index][0, :, :, 0],
                (self.card.input.width, self.card.input.height),
                transform,
                spec.threshold,
                spec.kind,
                self.card.anomaly,
            )
        if self.card.anomaly is not None:
            return self._anomaly_scores(float(outputs[self.scores_index].reshape(-1)[0]), heatmap), transform
        probs = outputs[self.scores_index].reshape(-1)
        best = int(np.argmax(probs))
        good = self.card.good_label
        defect = 1.0 - float(probs[self.card.labels.index(good)]) if good else float(probs[best])
        scores = Scores(
            probabilities={label: float(p) for label, p in zip(self.card.labels, probs, strict=True)},
            label=self.card.labels[best],
            score=float(probs[best]),
            defect_score=min(1.0, max(0.0, defect)),
            heatmap=heatmap,
        )
        return scores, transform

    def _detect(self, detector: DetectionHead, tensor: np.ndarray, transform: Transform) -> Scores:
        """Detections -> scores the decision rules read: per defect label its best detection."""
        size = (self.card.input.width, self.card.input.height)
        detections = detector.parse(self.model.run(tensor), size, transform)
        defects = self.card.defect_labels
        probabilities = label_scores(detections, defects, self.card.good_label)
        defect_score = max((probabilities[label] for label in defects), default=0.0)
        best = max(defects, key=lambda label: probabilities[label]) if defect_score > 0 else None
        label = best or self.card.good_label or (defects[0] if defects else self.card.labels[0])
        score = probabilities.get(label, 1.0 - defect_score)
        return Scores(probabilities, label, score, defect_score, detections=tuple(detections))

    def _anomaly_scores(self, raw: float, heatmap: Heatmap | None) -> Scores:
        """A raw anomaly score -> 0..1 (threshold at 0.5) read as p(anomaly) for the decision rules."""
        assert self.card.anomaly is not None
        norm = self.card.anomaly.normalize(raw, self.card.anomaly.image_threshold)
        good = self.card.good_label or self.card.labels[0]
        anomalous = next((label for label in self.card.labels if label != good), good)
        probabilities = {good: 1.0 - norm, anomalous: norm}
        label = anomalous if norm > 0.5 else good
        return Scores(probabilities, label, probabilities[label], norm, heatmap=heatmap)


def _bind_outputs(card: ModelCard, model: TFLiteModel, path: Path) -> ModelBundle:
    outputs = model.outputs
    if card.task == "anomaly":
        scores = find_output(outputs, ANOMALY_SCORE, 2)
        if scores is None or int(np.prod(outputs[scores].shape)) != 1:
            raise InspectError(
                f"{path}: an anomaly model needs an {ANOMALY_SCORE!r} output of shape [1, 1]",
                ExitStatus.DATA_ERROR,
            )
    else:
        scores = find_output(outputs, PROBABILITIES, 2)
        if scores is None or outputs[scores].shape[-1] != len(card.labels):
            raise InspectError(
                f"{path}: no [1, {len(card.labels)}] probabilities output among "
                f"{[(o.signature_name or o.name, o.shape) for o in outputs]}",
                ExitStatus.DATA_ERROR,
            )
    heatmap = None
    if card.heatmap is not None:
        heatmap = find_output(outputs, card.heatmap.output, 4)
        if heatmap is None or outputs[heatmap].shape[-1] != 1:
            raise InspectError(
                f"{path}: the card names heatmap output {card.heatmap.output!r}, "
                "the model has no [1, h, w, 1] output of that name",
                ExitStatus.DATA_ERROR,
            )
    return ModelBundle(card, model, scores_index=scores, heatmap_index=heatmap)


CardT = TypeVar("CardT", ModelCard, SeriesModelCard)


def open_verified(
    path: Path, read_card: Callable[[Path], CardT], num_threads: int | None, what: str = "model"
) -> tuple[CardT, TFLiteModel]:
    """The card beside ``path`` and the loaded interpreter, once the card is known to describe the file
    (sha256, tensor shapes and dtypes): a half-copied update never runs with the wrong card."""
    if path.suffix != ".tflite":
        raise InspectError(
            f"{what} must be a .tflite file with its .json card beside it, got {path}", ExitStatus.USAGE
        )
    if not path.is_file():
        raise InspectError(f"{what} file not found: {path}", ExitStatus.NO_INPUT)
    card = read_card(card_path_for(path))
    card.verify_file(path)
    model = TFLiteModel(path, num_threads=num_threads)
    card.verify_tensors(model.inputs, model.outputs)
    return card, model


def load_bundle(path: Path, num_threads: int | None = None) -> ModelBundle:
    card, model = open_verified(path, load_card, num_threads)
    if card.task == "detection" and card.detection is not None:
        return ModelBundle(card, model, detector=DetectionHead(card.detection, card.labels, model.outputs))
    if card.task not in _TASKS:
        raise InspectError(
            f"{path}: task {card.task!r} is not supported by this agent version", ExitStatus.DATA_ERROR
        )
    return _bind_outputs(card, model, path)
