"""One model under evaluation, Keras or TFLite, behind the same small interface."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from agent.bundle import load_bundle
from agent.model import TFLiteModel
from agent.modelcard import InputSpec
from agent.preprocess import to_input_tensor
from agent.status import ExitStatus, InspectError

__all__ = ["Variant", "load_variant", "tflite_outputs"]

WARMUP_RUNS = 5


@dataclass
class Variant:
    name: str
    path: Path
    kind: str  # "keras" or "tflite"
    quantization: str
    labels: list[str]
    good_label: str
    spec: InputSpec
    threshold: float
    size_bytes: int
    _predict: Callable[[np.ndarray], np.ndarray]  # (N, H, W, C) uint8 -> (N, K) float32

    @property
    def good_index(self) -> int:
        return self.labels.index(self.good_label)

    def predict(self, pixels: np.ndarray) -> np.ndarray:
        """(N, H, W, C) uint8 pixels -> (N, K) float32 probabilities."""
        return self._predict(pixels)

    def latency(self, pixels: np.ndarray, threads: list[int], runs: int) -> dict[str, dict[str, float]]:
        """Median and p90 single-image invoke time per interpreter thread count (TFLite only)."""
        if self.kind != "tflite":
            return {}
        timings = {}
        for count in threads:
            model = TFLiteModel(self.path, num_threads=count)
            tensor = to_input_tensor(pixels, self.spec)
            samples = []
            for i in range(WARMUP_RUNS + runs):
                start = time.perf_counter()
                model.run(tensor)
                if i >= WARMUP_RUNS:
                    samples.append((time.perf_counter() - start) * 1000.0)
            timings[f"threads_{count}"] = {
                "p50": float(np.percentile(samples, 50)),
                "p90": float(np.percentile(samples, 90)),
            }
        return timings


def _require_good(labels: list[str], good_label: str | None, path: Path) -> str:
    if good_label is None or good_label not in labels:
        raise InspectError(
            f"{path}: no good label among {labels}; cannot score defects", ExitStatus.DATA_ERROR
        )
    return good_label


def tflite_outputs(
    model: TFLiteModel, spec: InputSpec, pixels: np.ndarray, label: str | None = None
) -> np.ndarray:
    """(N, H, W, C) uint8 pixels -> (N, K) float32 first outputs, one invoke per image (batch 1)."""
    from tqdm import tqdm

    images = tqdm(pixels, desc=label, unit="img", leave=False) if label else pixels
    return np.stack([model.run(to_input_tensor(p, spec))[0][0] for p in images])


def _tflite_variant(path: Path) -> Variant:
    bundle = load_bundle(path, num_threads=1)  # refuses a card that does not match the file
    card, spec = bundle.card, bundle.card.input

    def predict(pixels: np.ndarray) -> np.ndarray:
        return tflite_outputs(bundle.model, spec, pixels, label=path.name)

    return Variant(
        name=path.name,
        path=path,
        kind="tflite",
        quantization=card.quantization,
        labels=card.labels,
        good_label=_require_good(card.labels, card.good_label, path),
        spec=spec,
        threshold=card.thresholds.defect,
        size_bytes=path.stat().st_size,
        _predict=predict,
    )


def _keras_variant(path: Path) -> Variant:
    from tools.source_model import input_spec, load_source_model, meta_from_training_json

    source = load_source_model(path)
    record = path.parent / "training.json" if path.is_file() else path / "training.json"
    if not record.is_file():
        raise InspectError(f"no training.json beside {path}: evaluate needs its labels", ExitStatus.NO_INPUT)
    meta = meta_from_training_json(record)
    spec = input_spec(meta, source.input_shape)
    size = (
        path.stat().st_size
        if path.is_file()
        else sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    )
    return Variant(
        name=path.name,
        path=path,
        kind="keras",
        quantization="float32",
        labels=meta.labels,
        good_label=_require_good(meta.labels, meta.good_label, path),
        spec=spec,
        threshold=float(meta.thresholds.get("defect", 0.5)),
        size_bytes=size,
        _predict=source.predict,
    )


def load_variant(path: Path) -> Variant:
    if not path.exists():
        raise InspectError(f"model {path} does not exist", ExitStatus.NO_INPUT)
    return _tflite_variant(path) if path.suffix == ".tflite" else _keras_variant(path)
