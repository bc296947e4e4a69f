"""The model card: the JSON sidecar that travels with every ``.tflite`` file.

It carries everything that gives the model's numbers a meaning on the device
(labels, which label is good, how to prepare the input, how to read the output,
thresholds calibrated on validation data), plus provenance (hashes, tool
versions) so the agent can refuse a card that does not belong to its model.
``inspect-model convert`` writes it; the agent only reads it.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from agent.status import ExitStatus, InspectError

__all__ = [
    "CARD_SUFFIX",
    "AnomalyNormalization",
    "DetectionOutputs",
    "DetectionSpec",
    "HeatmapSpec",
    "InputSpec",
    "ModelCard",
    "QuantParams",
    "SeriesInputSpec",
    "SeriesModelCard",
    "TensorSpec",
    "Thresholds",
    "card_path_for",
    "file_sha256",
    "load_card",
    "load_series_card",
    "save_card",
    "with_defect_threshold",
]

CARD_SUFFIX = ".json"
SCHEMA_VERSION = 1

_CardT = TypeVar("_CardT", bound="_Card")

Dtype = Literal["float32", "float16", "uint8", "int8", "int32", "int64", "bool"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class QuantParams(_Strict):
    """Affine quantization: real = scale * (q - zero_point)."""

    scale: float = Field(gt=0)
    zero_point: int


class TensorSpec(_Strict):
    name: str
    shape: list[int]
    dtype: Dtype
    quantization: QuantParams | None = Field(
        default=None, description="Present when the tensor is quantized (int8/uint8)."
    )
    signature_name: str | None = Field(
        default=None,
        description="The output's name in the model signature (e.g. probabilities, heatmap): how the agent "
        "finds each output, since TFLite orders a multi-output model's outputs its own way.",
    )


class InputSpec(TensorSpec):
    """How a camera frame becomes the input tensor.

    The float value fed to the network is ``(pixel - mean) / std`` per channel, with
    pixels in 0..255 after resizing and colour conversion. Our own models normalise
    inside the graph, so their cards say mean 0, std 1 and an int8 model's input
    quantization is close to identity (scale ~1): preprocessing is a resize and a cast.
    """

    color_order: Literal["RGB", "BGR", "GRAY"] = "RGB"
    resize: Literal["stretch", "letterbox"] = "stretch"
    mean: list[float] = Field(default_factory=lambda: [0.0])
    std: list[float] = Field(default_factory=lambda: [1.0])

    @model_validator(mode="after")
    def _check(self) -> InputSpec:
        if len(self.shape) != 4:
            raise ValueError(f"input shape must be [1, height, width, channels], got {self.shape}")
        channels = self.shape[3]
        expected = 1 if self.color_order == "GRAY" else 3
        if channels != expected:
            raise ValueError(
                f"color_order {self.color_order} needs {expected} channel(s), shape has {channels}"
            )
        for key in ("mean", "std"):
            values = getattr(self, key)
            if len(values) not in (1, channels):
                raise ValueError(f"{key} must have 1 or {channels} values, got {len(values)}")
        if any(s == 0 for s in self.std):
            raise ValueError("std values must be non-zero")
        return self

    @property
    def height(self) -> int:
        return self.shape[1]

    @property
    def width(self) -> int:
        return self.shape[2]

    @property
    def channels(self) -> int:
        return self.shape[3]


class SeriesInputSpec(TensorSpec):
    """How sensor samples become the input tensor of a time-series model.

    The agent resamples each channel to ``sample_rate_hz``, keeps the last ``window`` samples and
    runs the model every ``stride`` new samples. The value fed to the network is
    ``(sample - mean) / std`` per channel (fitted on the training part of the recording only).
    """

    channels: list[str] = Field(min_length=1, description="Channel names, in input order.")
    sample_rate_hz: float = Field(gt=0, description="Rate the model was trained at.")
    window: int = Field(ge=2, description="Samples per window.")
    stride: int = Field(ge=1, description="Samples between two inferences.")
    horizon: int = Field(default=0, ge=0, description="Samples ahead the label looked (0: detection only).")
    mean: list[float] = Field(description="Per-channel mean subtracted before the model.")
    std: list[float] = Field(description="Per-channel std dividing (sample - mean).")

    @model_validator(mode="after")
    def _check(self) -> SeriesInputSpec:
        expected = [1, self.window, len(self.channels)]
        if self.shape != expected:
            raise ValueError(f"input shape must be [1, window, channels] = {expected}, got {self.shape}")
        for key in ("mean", "std"):
            if len(getattr(self, key)) != len(self.channels):
                raise ValueError(f"{key} must have one value per channel ({len(self.channels)})")
        if any(s <= 0 for s in self.std):
            raise ValueError("std values must be > 0")
        if len(set(self.channels)) != len(self.channels):
            raise ValueError(f"channels must be unique, got {self.channels}")
        return self


class Thresholds(_Strict):
    """Decision thresholds on the defect score (1 - p(good)); a score equal to the threshold is good."""

    defect: float = Field(default=0.5, ge=0.0, le=1.0, description="NG when defect score > this.")
    per_label: dict[str, float] = Field(
        default_factory=dict, description="Optional per-defect-label thresholds on that label's probability."
    )
    source: str = Field(default="default", description="'default' or how it was calibrated.")
    target_recall: float | None = None


class DetectionOutputs(_Strict):
    """The names of a detector's four output tensors (TFLite_Detection_PostProcess layout)."""

    boxes: str = Field(description="[1, N, 4] normalised ymin, xmin, ymax, xmax.")
    classes: str = Field(description="[1, N] class ids (as floats); label index = id + label_offset.")
    scores: str = Field(description="[1, N] confidence in 0..1.")
    count: str = Field(description="[1] number of valid rows.")


class DetectionSpec(_Strict):
    """How to read a detector: which output is which, how class ids map to labels, what to keep."""

    outputs: DetectionOutputs
    label_offset: int = Field(
        default=0, description="Added to a class id to index labels (1 when labels start with a background)."
    )
    score_threshold: float = Field(
        default=0.3, ge=0.0, le=1.0, description="Detections scoring below this are dropped first."
    )
    max_detections: int = Field(
        default=20, ge=1, description="At most this many detections per image, best first."
    )
    defect_labels: list[str] | None = Field(
        default=None, description="Labels that mean a defect; null = every label except good_label."
    )


class HeatmapSpec(_Strict):
    """How to read the model's heatmap output (where the defect is), when it has one."""

    output: str = Field(description="signature_name of the heatmap output, shape [1, h, w, 1].")
    kind: Literal["defect_map", "class_activation", "anomaly_map"] = Field(
        description="defect_map: trained on defect masks (sigmoid, 0..1); class_activation: the classifier "
        "applied per location (1 - p(good) there, 0..1); anomaly_map: per-pixel anomaly (raw units)."
    )
    threshold: float = Field(
        description="Pixel threshold in the heatmap's own units: cells above it form the event's regions."
    )
    source: str = Field(default="default", description="'default' or how the threshold was calibrated.")


class AnomalyNormalization(_Strict):
    """Raw anomaly scores -> 0..1 as anomalib does: the threshold maps to 0.5, min/max to 0/1, clamped."""

    image_threshold: float = Field(description="Raw image score above which a part is NG.")
    pixel_threshold: float = Field(description="Raw heatmap value above which a pixel is anomalous.")
    min: float = Field(description="Lowest raw score seen in calibration (maps to 0).")
    max: float = Field(description="Highest raw score seen in calibration (maps to 1).")
    source: str = Field(default="default", description="How the thresholds were calibrated.")

    @model_validator(mode="after")
    def _check(self) -> AnomalyNormalization:
        if not self.max > self.min:
            raise ValueError(f"max ({self.max}) must be greater than min ({self.min})")
        return self

    def shifted(self, raw: Any, threshold: float) -> Any:
        """``raw`` (a number or an array) rescaled so ``threshold`` sits at 0.5; not yet clamped."""
        return (raw - threshold) / (self.max - self.min) + 0.5

    def normalize(self, raw: float, threshold: float) -> float:
        """``raw`` -> 0..1 with ``threshold`` at 0.5 (anomalib's one-class normalisation)."""
        return min(1.0, max(0.0, float(self.shifted(raw, threshold))))


class _Card(_Strict):
    """What every card has; ``ModelCard`` (images) and ``SeriesModelCard`` (sensors) add their input."""

    schema_version: int = SCHEMA_VERSION
    name: str
    version: str = "1"
    task: Literal["classification", "anomaly", "detection", "timeseries"] = "classification"
    labels: list[str] = Field(min_length=1)
    good_label: str | None = None
    quantization: Literal["float32", "float16", "dynamic", "int8"]
    input: TensorSpec
    outputs: list[TensorSpec] = Field(min_length=1)
    thresholds: Thresholds = Field(default_factory=Thresholds)
    metrics: dict[str, Any] = Field(default_factory=dict)
    training: dict[str, Any] = Field(default_factory=dict)
    source_model: dict[str, Any] = Field(default_factory=dict)
    tflite_file: str
    tflite_sha256: str
    tflite_bytes: int
    tools: dict[str, str] = Field(default_factory=dict)
    created: str

    @model_validator(mode="after")
    def _check_labels(self) -> _Card:
        # A detector's good label names "no defect found"; it is not one of its classes.
        if self.good_label is not None and self.good_label not in self.labels and self.task != "detection":
            raise ValueError(f"good_label {self.good_label!r} is not one of labels {self.labels}")
        if len(set(self.labels)) != len(self.labels):
            raise ValueError(f"labels must be unique, got {self.labels}")
        unknown = set(self.thresholds.per_label) - set(self.labels)
        if unknown:
            raise ValueError(f"thresholds.per_label names unknown labels {sorted(unknown)}")
        return self

    def verify_file(self, tflite_path: Path) -> None:
        """Refuse a card that does not describe this exact file."""
        actual = file_sha256(tflite_path)
        if actual != self.tflite_sha256:
            raise InspectError(
                f"model card {card_path_for(tflite_path)} does not match {tflite_path}: "
                f"card sha256 {self.tflite_sha256[:12]}…, file sha256 {actual[:12]}…",
                ExitStatus.DATA_ERROR,
            )

    def verify_tensors(self, inputs: list[TensorSpec], outputs: list[TensorSpec]) -> None:
        """Refuse a card whose tensor shapes or dtypes differ from the interpreter's."""
        problems = []
        if len(inputs) != 1:
            problems.append(f"model has {len(inputs)} inputs, the card describes 1")
        elif (inputs[0].shape, inputs[0].dtype) != (self.input.shape, self.input.dtype):
            problems.append(
                f"input is {inputs[0].dtype}{inputs[0].shape} in the model, "
                f"{self.input.dtype}{self.input.shape} in the card"
            )
        if len(outputs) != len(self.outputs):
            problems.append(f"model has {len(outputs)} outputs, the card describes {len(self.outputs)}")
        else:
            for got, want in zip(outputs, self.outputs, strict=True):
                if want.signature_name is not None and got.signature_name != want.signature_name:
                    problems.append(
                        f"output {want.name} is {got.signature_name!r} in the model, "
                        f"{want.signature_name!r} in the card"
                    )
                elif (got.shape, got.dtype) != (want.shape, want.dtype):
                    problems.append(
                        f"output {want.name} is {got.dtype}{got.shape} in the model, "
                        f"{want.dtype}{want.shape} in the card"
                    )
        if problems:
            raise InspectError(
                "model card does not match the model: " + "; ".join(problems), ExitStatus.DATA_ERROR
            )


class ModelCard(_Card):
    """The card of an image model."""

    input: InputSpec
    heatmap: HeatmapSpec | None = Field(
        default=None, description="Present when the model has a heatmap output (regions in events)."
    )
    anomaly: AnomalyNormalization | None = Field(
        default=None, description="Required for task anomaly: thresholds and score normalisation."
    )
    detection: DetectionSpec | None = Field(
        default=None, description="Required for task 'detection': how to read the detector's outputs."
    )

    @model_validator(mode="after")
    def _check_sections(self) -> ModelCard:
        if self.task == "anomaly" and self.anomaly is None:
            raise ValueError("task anomaly needs the 'anomaly' section (thresholds and normalisation)")
        names = {o.signature_name for o in self.outputs}
        if self.heatmap is not None and self.heatmap.output not in names:
            raise ValueError(f"heatmap.output {self.heatmap.output!r} is none of the outputs' signature_name")
        self._check_detection()
        return self

    def _check_detection(self) -> None:
        if (self.task == "detection") != (self.detection is not None):
            raise ValueError("a detection section is required for task 'detection' and only for it")
        if self.detection is None:
            return
        names = {t.name for t in self.outputs}
        missing = sorted(set(self.detection.outputs.model_dump().values()) - names)
        if missing:
            raise ValueError(f"detection.outputs names {missing}, not among outputs {sorted(names)}")
        unknown = sorted(set(self.detection.defect_labels or []) - set(self.labels))
        if unknown:
            raise ValueError(f"detection.defect_labels names unknown labels {unknown}")
        if self.detection.score_threshold > self.thresholds.defect:
            raise ValueError(
                f"detection.score_threshold {self.detection.score_threshold} is above thresholds.defect "
                f"{self.thresholds.defect}: the detections that should decide NG would be dropped first"
            )

    @property
    def defect_labels(self) -> list[str]:
        if self.detection is not None and self.detection.defect_labels is not None:
            return list(self.detection.defect_labels)
        return [label for label in self.labels if label != self.good_label]


class SeriesModelCard(_Card):
    """The card of a sensor time-series model: one sigmoid output, the anomaly score."""

    task: Literal["timeseries"] = "timeseries"
    input: SeriesInputSpec
    recommended: bool = Field(
        default=True, description="False when this variant's agreement with float32 was not good enough."
    )


def card_path_for(tflite_path: Path) -> Path:
    return tflite_path.with_suffix(CARD_SUFFIX)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_card(path: Path) -> ModelCard:
    """Read and validate an image model's card; errors name the file and the offending field."""
    raw = _read_card(path)
    if isinstance(raw, dict) and raw.get("task") == "timeseries":
        raise InspectError(
            f"model card {path} is a time-series model: configure it under `sensors:`, not `model:`",
            ExitStatus.DATA_ERROR,
        )
    return _validated(ModelCard, raw, path)


def load_series_card(path: Path) -> SeriesModelCard:
    """Read and validate a sensor model's card."""
    raw = _read_card(path)
    if isinstance(raw, dict) and raw.get("task") != "timeseries":
        raise InspectError(
            f"model card {path} is a {raw.get('task', 'classification')} model, not a time-series one",
            ExitStatus.DATA_ERROR,
        )
    return _validated(SeriesModelCard, raw, path)


def _read_card(path: Path) -> Any:
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise InspectError(f"model card not found: {path}", ExitStatus.NO_INPUT) from exc
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InspectError(f"model card {path} is not readable JSON: {exc}", ExitStatus.DATA_ERROR) from exc
    return raw


def _validated(kind: type[_CardT], raw: Any, path: Path) -> _CardT:
    try:
        return kind.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "(top level)"
        raise InspectError(
            f"model card {path} is invalid at {where}: {first['msg']} ({exc.error_count()} error(s))",
            ExitStatus.DATA_ERROR,
        ) from exc


def with_defect_threshold(card: ModelCard, threshold: float, source: str, target_recall: float) -> ModelCard:
    """``card`` with a new calibrated defect threshold, validated again.

    A detector drops detections below its score floor before the threshold is applied, so a
    threshold calibrated below the floor lowers the floor with it (else the card would be refused).
    """
    data = card.model_dump(mode="json")
    data["thresholds"].update(defect=float(threshold), source=source, target_recall=target_recall)
    detection = data.get("detection")
    if detection is not None and detection["score_threshold"] > data["thresholds"]["defect"]:
        detection["score_threshold"] = data["thresholds"]["defect"]
    return ModelCard.model_validate(data)


def save_card(card: _Card, path: Path) -> None:
    path.write_text(json.dumps(card.model_dump(mode="json"), indent=2) + "\n")
