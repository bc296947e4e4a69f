"""A time-series model bundle: the ``.tflite`` file, its card (refused when it does not match), scoring."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from agent.bundle import Scores, open_verified
from agent.model import TFLiteModel
from agent.modelcard import SeriesModelCard, load_series_card

__all__ = ["SeriesBundle", "load_series_bundle"]


@dataclass
class SeriesBundle:
    card: SeriesModelCard
    model: TFLiteModel

    def __post_init__(self) -> None:
        spec = self.card.input
        self._mean = np.asarray(spec.mean, np.float32)
        self._std = np.asarray(spec.std, np.float32)

    def standardize(self, values: np.ndarray) -> np.ndarray:
        """(window, channels) raw sensor values -> what the model was trained on."""
        return ((values - self._mean) / self._std).astype(np.float32)

    def score(self, standardized: np.ndarray) -> float:
        """(window, channels) standardised -> anomaly score 0..1 (quantized inputs are quantized here)."""
        tensor = standardized[None]
        quant = self.card.input.quantization
        if quant is not None and self.card.input.dtype in ("int8", "uint8"):
            info = np.iinfo(np.dtype(self.card.input.dtype))
            tensor = np.clip(np.round(tensor / quant.scale + quant.zero_point), info.min, info.max)
        tensor = tensor.astype(np.dtype(self.card.input.dtype))
        return float(np.clip(self.model.run(tensor)[0].reshape(-1)[0], 0.0, 1.0))

    def scores(self, score: float) -> Scores:
        """The score as the Decider reads image scores: p(good) = 1 - score, defect score = score."""
        good = self.card.good_label or "normal"
        bad = next((label for label in self.card.labels if label != good), "anomaly")
        probabilities = {good: 1.0 - score, bad: score}
        label = bad if score > 0.5 else good
        return Scores(probabilities, label, probabilities[label], score)


def load_series_bundle(path: Path, num_threads: int = 1) -> SeriesBundle:
    return SeriesBundle(*open_verified(path, load_series_card, num_threads, what="sensor model"))
