"""A model bundle on the device: the ``.tflite`` file, its card, a loaded interpreter.

Loading refuses a card that does not describe the file (sha256, tensor shapes and
dtypes) so a half-copied update can never run with the wrong labels or thresholds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from agent.detection import Detection, DetectionHead, label_scores
from agent.model import TFLiteModel
from agent.modelcard import ModelCard, card_path_for, load_card
from agent.preprocess import Transform, preprocess
from agent.status import ExitStatus, InspectError

__all__ = ["ModelBundle", "Scores", "load_bundle"]


@dataclass(frozen=True)
class Scores:
    """Class probabilities for one image plus the good/defect reading of them."""

    probabilities: dict[str, float]
    label: str  # the most probable class
    score: float  # its probability
    defect_score: float  # 1 - p(good): 0 = surely good, 1 = surely defective
    # Detectors: every detection kept, boxes in the pixels of the image given to ``classify``.
    detections: tuple[Detection, ...] = field(default=())


@dataclass
class ModelBundle:
    card: ModelCard
    model: TFLiteModel
    detector: DetectionHead | None = None  # set for task "detection"

    def classify(self, image: np.ndarray) -> tuple[Scores, Transform]:
        """A BGR/grey uint8 frame -> scores, and the transform from model to frame pixels."""
        tensor, transform = preprocess(image, self.card.input)
        if self.detector is not None:
            return self._detect(self.detector, tensor, transform), transform
        probs = self.model.run(tensor)[0].reshape(-1)
        best = int(np.argmax(probs))
        good = self.card.good_label
        defect = 1.0 - float(probs[self.card.labels.index(good)]) if good else float(probs[best])
        scores = Scores(
            probabilities={label: float(p) for label, p in zip(self.card.labels, probs, strict=True)},
            label=self.card.labels[best],
            score=float(probs[best]),
            defect_score=min(1.0, max(0.0, defect)),
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
        return Scores(probabilities, label, score, defect_score, tuple(detections))


def load_bundle(path: Path, num_threads: int | None = None) -> ModelBundle:
    if path.suffix != ".tflite":
        raise InspectError(
            f"model must be a .tflite file with its .json card beside it, got {path}", ExitStatus.USAGE
        )
    if not path.is_file():
        raise InspectError(f"model file not found: {path}", ExitStatus.NO_INPUT)
    card = load_card(card_path_for(path))
    card.verify_file(path)
    model = TFLiteModel(path, num_threads=num_threads)
    card.verify_tensors(model.inputs, model.outputs)
    if card.task == "detection" and card.detection is not None:
        return ModelBundle(card, model, DetectionHead(card.detection, card.labels, model.outputs))
    if card.task != "classification":
        raise InspectError(
            f"{path}: task {card.task!r} is not supported by this agent version", ExitStatus.DATA_ERROR
        )
    return ModelBundle(card, model)
