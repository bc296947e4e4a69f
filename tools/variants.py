"""One model under evaluation, Keras or TFLite, behind the same small interface."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from agent.bundle import HEATMAP, Heatmap, load_bundle, scores_output
from agent.model import TFLiteModel
from agent.modelcard import AnomalyNormalization, HeatmapSpec, InputSpec
from agent.preprocess import Transform, to_input_tensor
from agent.status import ExitStatus, InspectError

__all__ = ["Variant", "load_variant", "tflite_all_outputs", "tflite_outputs"]

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
    # (N, H, W, C) uint8 -> (N, K) float32 probabilities, and (N, h, w) 0..1 heatmaps or None
    _predict: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray | None]]
    task: str = "classification"
    heatmap_kind: str | None = None
    pixel_threshold: float | None = None  # on the 0..1 heatmap scale

    @property
    def good_index(self) -> int:
        return self.labels.index(self.good_label)

    def predict(self, pixels: np.ndarray) -> np.ndarray:
        """(N, H, W, C) uint8 pixels -> (N, K) float32 probabilities (anomaly: [1 - s, s], s normalised)."""
        return self._predict(pixels)[0]

    def predict_with_heatmaps(self, pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """Probabilities and, for models with a heatmap, (N, h, w) heatmaps on a 0..1 scale."""
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


@dataclass(frozen=True)
class OutputReader:
    """Raw outputs -> what evaluate compares: probabilities and 0..1 heatmaps, read as the agent does."""

    heatmap: HeatmapSpec | None
    anomaly: AnomalyNormalization | None

    def _unit(self, maps: np.ndarray) -> tuple[np.ndarray, float]:
        assert self.heatmap is not None
        spec = Heatmap(
            maps, (0, 0), Transform(1.0, 1.0), self.heatmap.threshold, self.heatmap.kind, self.anomaly
        )
        return spec.unit_values()

    @property
    def pixel_threshold(self) -> float | None:
        return None if self.heatmap is None else self._unit(np.zeros((1, 1), np.float32))[1]

    def read(self, scores: np.ndarray, maps: np.ndarray | None) -> tuple[np.ndarray, np.ndarray | None]:
        if self.anomaly is not None:  # one raw score -> [p(good), p(anomaly)] as the bundle reads it
            norm = np.clip(self.anomaly.shifted(scores.reshape(-1), self.anomaly.image_threshold), 0.0, 1.0)
            scores = np.stack([1.0 - norm, norm], axis=1).astype(np.float32)
        if maps is None or self.heatmap is None:
            return scores, None
        return scores, self._unit(maps.reshape(maps.shape[:3]))[0]


def _require_good(labels: list[str], good_label: str | None, path: Path) -> str:
    if good_label is None or good_label not in labels:
        raise InspectError(
            f"{path}: no good label among {labels}; cannot score defects", ExitStatus.DATA_ERROR
        )
    return good_label


def tflite_all_outputs(
    model: TFLiteModel, spec: InputSpec, pixels: np.ndarray, label: str | None = None
) -> list[np.ndarray]:
    """(N, H, W, C) uint8 pixels -> each output stacked over the images (N, ...), one invoke per image."""
    from tqdm import tqdm

    images = tqdm(pixels, desc=label, unit="img", leave=False) if label else pixels
    runs = [model.run(to_input_tensor(p, spec)) for p in images]
    return [np.concatenate([run[i] for run in runs]) for i in range(len(model.outputs))]


def tflite_outputs(
    model: TFLiteModel, spec: InputSpec, pixels: np.ndarray, label: str | None = None
) -> np.ndarray:
    """(N, H, W, C) uint8 pixels -> (N, K) float32 scores (probabilities or anomaly score)."""
    index = scores_output(model.outputs)
    if index is None:
        raise InspectError(f"{model.path}: no [1, K] scores output among its outputs", ExitStatus.DATA_ERROR)
    return tflite_all_outputs(model, spec, pixels, label)[index]


def _tflite_variant(path: Path) -> Variant:
    bundle = load_bundle(path, num_threads=1)  # refuses a card that does not match the file
    card, spec = bundle.card, bundle.card.input
    reader = OutputReader(card.heatmap, card.anomaly)

    def predict(pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        outputs = tflite_all_outputs(bundle.model, spec, pixels, label=path.name)
        maps = None if bundle.heatmap_index is None else outputs[bundle.heatmap_index]
        return reader.read(outputs[bundle.scores_index], maps)

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
        task=card.task,
        heatmap_kind=card.heatmap.kind if card.heatmap else None,
        pixel_threshold=reader.pixel_threshold,
    )


def _keras_variant(path: Path) -> Variant:
    from tools.source_model import input_spec, load_source_model, meta_from_training_json

    source = load_source_model(path)
    record = path.parent / "training.json" if path.is_file() else path / "training.json"
    if not record.is_file():
        raise InspectError(f"no training.json beside {path}: evaluate needs its labels", ExitStatus.NO_INPUT)
    meta = meta_from_training_json(record)
    spec = input_spec(meta, source.input_shape)
    reader = OutputReader(meta.heatmap_spec(), meta.anomaly_normalization())

    def predict(pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        outputs = source.predict_outputs(pixels)
        scores = outputs.pop(source.primary_output) if source.primary_output else source.predict(pixels)
        return reader.read(scores, outputs.get(HEATMAP))

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
        _predict=predict,
        task=meta.task,
        heatmap_kind=meta.heatmap.get("kind"),
        pixel_threshold=reader.pixel_threshold,
    )


def load_variant(path: Path) -> Variant:
    if not path.exists():
        raise InspectError(f"model {path} does not exist", ExitStatus.NO_INPUT)
    return _tflite_variant(path) if path.suffix == ".tflite" else _keras_variant(path)
