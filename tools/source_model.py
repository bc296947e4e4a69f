"""A trained Keras/SavedModel model plus the facts the model card needs about it.

Those facts (labels, good label, colour order, normalisation, calibrated
thresholds) come from the ``training.json`` that ``train`` wrote beside the model,
or from command-line flags for models trained elsewhere.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from agent.modelcard import AnomalyNormalization, HeatmapSpec, InputSpec, TensorSpec, file_sha256
from agent.status import ExitStatus, InspectError
from tools.tf_util import import_tensorflow

__all__ = ["ModelMeta", "SourceModel", "input_spec", "load_source_model", "meta_from_training_json"]

log = logging.getLogger(__name__)

SCORE_OUTPUTS = ("probabilities", "anomaly_score")  # the named output that carries the scores


@dataclass
class ModelMeta:
    labels: list[str]
    good_label: str | None
    color_order: str = "RGB"
    resize: str = "stretch"
    mean: list[float] = field(default_factory=lambda: [0.0])
    std: list[float] = field(default_factory=lambda: [1.0])
    thresholds: dict[str, Any] = field(default_factory=dict)
    training: dict[str, Any] = field(default_factory=dict)
    validation: dict[str, Any] = field(default_factory=dict)
    heatmap: dict[str, Any] = field(default_factory=dict)  # output, kind, threshold, source
    task: str = "classification"
    anomaly: dict[str, Any] = field(default_factory=dict)  # normalisation of an anomaly model

    def heatmap_spec(self) -> HeatmapSpec | None:
        """The card's heatmap section from the training record (which also holds its validation figures)."""
        if not self.heatmap:
            return None
        return HeatmapSpec.model_validate(
            {k: v for k, v in self.heatmap.items() if k in HeatmapSpec.model_fields}
        )

    def anomaly_normalization(self) -> AnomalyNormalization | None:
        return AnomalyNormalization.model_validate(self.anomaly) if self.anomaly else None


def meta_from_training_json(path: Path) -> ModelMeta:
    try:
        record = json.loads(path.read_text())
        return ModelMeta(
            labels=list(record["labels"]),
            good_label=record.get("good_label"),
            color_order=record["input"]["color_order"],
            resize=record["input"].get("resize", "stretch"),
            mean=list(record["input"].get("mean", [0.0])),
            std=list(record["input"].get("std", [1.0])),
            thresholds=dict(record.get("thresholds", {})),
            training={"data": record.get("data", {}), "epochs_run": record.get("epochs_run")},
            validation={k: record["validation"].get(k) for k in ("accuracy", "defect_roc_auc", "images")}
            if "validation" in record
            else {},
            heatmap=dict(record.get("heatmap") or {}),
            task=str(record.get("task", "classification")),
            anomaly=dict(record.get("anomaly") or {}),
        )
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InspectError(f"cannot read training record {path}: {exc!r}", ExitStatus.DATA_ERROR) from exc


def input_spec(
    meta: ModelMeta, input_shape: tuple[int, int, int], tensor: TensorSpec | None = None
) -> InputSpec:
    """How pixels reach the model: float32, or a TFLite ``tensor``'s dtype and quantization."""
    h, w, c = input_shape
    return InputSpec(
        name=tensor.name if tensor is not None else "image",
        shape=[1, h, w, c],
        dtype=tensor.dtype if tensor is not None else "float32",
        quantization=tensor.quantization if tensor is not None else None,
        color_order=meta.color_order,  # type: ignore[arg-type]
        resize=meta.resize,  # type: ignore[arg-type]
        mean=meta.mean,
        std=meta.std,
    )


@dataclass
class SourceModel:
    path: Path
    format: str  # "keras", "h5" or "saved_model"
    input_shape: tuple[int, int, int]
    num_outputs: int
    sha256: str
    _model: Any
    primary_output: str | None = None  # the scores' key when the Keras model has named outputs

    @property
    def output_names(self) -> list[str]:
        """Named outputs of a multi-output Keras model (probabilities, heatmap ...), else []."""
        return sorted(_named_outputs(self._model) or {})

    def predict_outputs(self, pixels: np.ndarray, batch_size: int = 64) -> dict[str, np.ndarray]:
        """(N, H, W, C) uint8 pixels -> every named output (a Keras model with named outputs)."""
        out = self._model.predict(pixels.astype(np.float32), batch_size=batch_size, verbose=0)
        if not isinstance(out, dict):
            return {self.primary_output or "output_0": np.asarray(out, np.float32)}
        return {name: np.asarray(value, np.float32) for name, value in out.items()}

    def predict(self, pixels: np.ndarray, batch_size: int = 64) -> np.ndarray:
        """(N, H, W, C) uint8 pixels -> (N, K) float32 scores (the probabilities of a classifier)."""
        values = pixels.astype(np.float32)
        if self.format == "saved_model":
            import tensorflow as tf

            fn = self._model.signatures["serving_default"]
            (input_name,) = fn.structured_input_signature[1].keys()  # signatures take keyword arguments
            outs = [
                next(iter(fn(**{input_name: tf.constant(values[i : i + batch_size])}).values())).numpy()
                for i in range(0, len(values), batch_size)
            ]
            return np.concatenate(outs).astype(np.float32)
        if self.primary_output is not None:
            return self.predict_outputs(pixels, batch_size)[self.primary_output]
        return np.asarray(self._model.predict(values, batch_size=batch_size, verbose=0), dtype=np.float32)

    def converter(self) -> Any:
        tf = import_tensorflow()
        if self.format == "saved_model":
            return tf.lite.TFLiteConverter.from_saved_model(str(self.path))
        return tf.lite.TFLiteConverter.from_keras_model(self._model)

    @property
    def keras_model(self) -> Any:
        return self._model


def _named_outputs(model: Any) -> dict[str, Any] | None:
    """A Keras model's outputs by name when it has a dict of them (ours), else None.

    ``model.output`` raises for a reloaded Sequential model that was never called; ``outputs`` works.
    """
    try:
        output = model.output
    except (AttributeError, ValueError):
        return None
    return output if isinstance(output, dict) else None


def _sha256_of(path: Path) -> str:
    if path.is_file():
        return file_sha256(path)
    pb = path / "saved_model.pb"
    return file_sha256(pb) if pb.is_file() else ""


def load_source_model(path: Path) -> SourceModel:
    """Load ``.keras``, legacy ``.h5`` or a SavedModel folder; refuse what is not rank-4 image input."""
    if not path.exists():
        raise InspectError(f"model {path} does not exist", ExitStatus.NO_INPUT)
    tf = import_tensorflow()
    import keras

    primary: str | None = None
    try:
        if path.is_dir():
            if not (path / "saved_model.pb").is_file():
                raise InspectError(f"{path} is a folder without saved_model.pb", ExitStatus.DATA_ERROR)
            model, fmt = tf.saved_model.load(str(path)), "saved_model"
            fn = model.signatures["serving_default"]
            spec = next(iter(fn.structured_input_signature[1].values()))
            in_shape = list(spec.shape)
            out_shape = list(next(iter(fn.structured_outputs.values())).shape)
        elif path.suffix in (".keras", ".h5", ".hdf5"):
            model = keras.models.load_model(str(path), compile=False)
            fmt = "keras" if path.suffix == ".keras" else "h5"
            in_shape, out_shape = list(model.inputs[0].shape), list(model.outputs[0].shape)
            named = _named_outputs(model)
            if named is not None:  # ours: probabilities (or anomaly_score) plus heatmap
                primary = next((k for k in SCORE_OUTPUTS if k in named), None)
                if primary is None:
                    raise InspectError(
                        f"model {path} has named outputs {sorted(named)}, none of {SCORE_OUTPUTS}",
                        ExitStatus.DATA_ERROR,
                    )
                out_shape = list(named[primary].shape)
        else:
            raise InspectError(
                f"{path}: unsupported model format {path.suffix!r} (use .keras, .h5 or a SavedModel folder)",
                ExitStatus.DATA_ERROR,
            )
    except InspectError:
        raise
    except Exception as exc:  # Keras raises many types for a damaged file
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InspectError(f"cannot read model {path}: {first}", ExitStatus.DATA_ERROR) from exc
    if len(in_shape) != 4 or any(d is None for d in in_shape[1:]):
        raise InspectError(
            f"model {path} input must be rank 4 (batch, height, width, channels) with fixed sizes, "
            f"got {in_shape}",
            ExitStatus.DATA_ERROR,
        )
    if len(out_shape) != 2:
        raise InspectError(
            f"model {path} output must be (batch, classes) probabilities, got shape {out_shape}",
            ExitStatus.DATA_ERROR,
        )
    h, w, c = (int(d) for d in in_shape[1:])
    return SourceModel(path, fmt, (h, w, c), int(out_shape[1]), _sha256_of(path), model, primary)
