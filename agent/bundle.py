"""A model bundle on the device: the ``.tflite`` file, its card, a loaded interpreter.

Loading refuses a card that does not describe the file (sha256, tensor shapes and
dtypes) so a half-copied update can never run with the wrong labels or thresholds.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

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


@dataclass
class ModelBundle:
    card: ModelCard
    model: TFLiteModel

    def classify(self, image: np.ndarray) -> tuple[Scores, Transform]:
        """A BGR/grey uint8 frame -> scores, and the transform from model to frame pixels."""
        tensor, transform = preprocess(image, self.card.input)
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
    if card.task != "classification":
        raise InspectError(
            f"{path}: task {card.task!r} is not supported by this agent version", ExitStatus.DATA_ERROR
        )
    return ModelBundle(card, model)
