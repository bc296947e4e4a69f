"""``inspect-model card``: write the model card for a ``.tflite`` built elsewhere, so the agent can run it.

    inspect-model card --labels labelmap.txt ssd_mobilenet_v2.tflite --good-label none --label-offset 0
    inspect-model card --labels labels.txt --task classification --good-label good classifier.tflite

The model is loaded in the device's interpreter and inspected: its input (shape, dtype,
quantization) becomes the card's input spec, and for a detector the four outputs of
TFLite_Detection_PostProcess (boxes, classes, scores, count) are found by signature key, tensor
name or shape (TF1 and TF2 exports order them differently) and recorded by name. The labels file
is one label per line (line number = class id) or ``id label`` pairs, as pycoral and Frigate read
them. Quantized inputs are fed the camera's pixels unchanged (mean = zero point, std = 1/scale), as
pycoral does; float inputs default to [-1, 1] (mean = std = 127.5, the TF Object Detection API's).
The card is written beside the model (``model.tflite`` -> ``model.json``).
"""

from __future__ import annotations

import argparse
import logging
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from agent.detection import find_output_roles, labels_from_file
from agent.model import TFLiteModel, load_interpreter_class
from agent.modelcard import (
    DetectionOutputs,
    DetectionSpec,
    InputSpec,
    ModelCard,
    TensorSpec,
    Thresholds,
    card_path_for,
    file_sha256,
    save_card,
)
from agent.status import ExitStatus, InspectError
from tools._cli_util import HelpFormatter, require_file
from tools.tf_util import tool_versions

__all__ = ["add_parser", "card_for", "run", "signature_outputs"]

log = logging.getLogger(__name__)


def signature_outputs(path: Path) -> dict[str, str]:
    """Signature output key -> output tensor name, for a model with one signature (else empty)."""
    interpreter_class, _ = load_interpreter_class()
    interpreter = interpreter_class(model_path=str(path))
    signatures = interpreter.get_signature_list()
    if len(signatures) != 1:
        return {}
    runner = interpreter.get_signature_runner(next(iter(signatures)))
    names = {d["index"]: d["name"] for d in interpreter.get_output_details()}
    return {key: names[d["index"]] for key, d in runner.get_output_details().items() if d["index"] in names}


def default_normalisation(tensor: TensorSpec) -> tuple[list[float], list[float]]:
    """Mean and std that feed a quantized input the raw pixels, or map a float input to [-1, 1]."""
    q = tensor.quantization
    if q is not None:
        return [float(q.zero_point)], [1.0 / q.scale]
    return [127.5], [127.5]


def _parse_outputs(text: str | None) -> DetectionOutputs | None:
    if not text:
        return None
    try:
        pairs = dict(item.split("=", 1) for item in text.split(","))
        return DetectionOutputs(**{k.strip(): v.strip() for k, v in pairs.items()})
    except (ValueError, TypeError) as exc:
        raise InspectError(
            f"--outputs must be boxes=NAME,classes=NAME,scores=NAME,count=NAME, got {text!r}",
            ExitStatus.USAGE,
        ) from exc


def card_for(
    path: Path,
    model: TFLiteModel,
    labels: list[str],
    input_spec: InputSpec,
    detection: DetectionSpec | None,
    **card: Any,
) -> ModelCard:
    """A card for ``path``: a detector's with ``detection``, else a classifier's; ``card`` holds the
    remaining ModelCard fields (name, thresholds, metrics ...)."""
    return ModelCard(
        task="classification" if detection is None else "detection",
        labels=labels,
        input=input_spec,
        outputs=model.outputs,
        detection=detection,
        tflite_file=path.name,
        tflite_sha256=file_sha256(path),
        tflite_bytes=path.stat().st_size,
        tools=tool_versions(),
        created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        **card,
    )


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "card",
        help="inspect a .tflite built elsewhere (e.g. an SSD detector) and write its model card",
        description=__doc__,
        formatter_class=HelpFormatter,
    )
    p.add_argument("model", type=Path, help="the .tflite file; the card is written beside it")
    p.add_argument(
        "--labels", type=Path, required=True, help="labels file: one per line, or 'id label' pairs"
    )
    p.add_argument("--task", choices=["auto", "detection", "classification"], default="auto",
                   help="auto: detection for 4 outputs, classification for 1")  # fmt: skip
    p.add_argument("--name", help="model name (default: the file's stem)")
    p.add_argument("--model-version", default="1", help="version string stored in the card")
    p.add_argument("--good-label", help="classification: the good class; detection: the label reported "
                   "when no defect is found (need not be a class)")  # fmt: skip
    p.add_argument("--color-order", choices=["RGB", "BGR", "GRAY"], default="RGB")
    p.add_argument("--resize", choices=["stretch", "letterbox"], default="stretch")
    p.add_argument("--mean", type=float, nargs="+", help="per-channel mean (default: see above)")
    p.add_argument("--std", type=float, nargs="+", help="per-channel std (default: see above)")
    p.add_argument("--threshold", type=float, default=0.5, help="defect threshold of the decision")
    det = p.add_argument_group("detection")
    det.add_argument("--label-offset", type=int, default=0, help="added to a class id to index the labels")
    det.add_argument("--score-threshold", type=float, default=0.3, help="detections below are dropped")
    det.add_argument("--max-detections", type=int, default=20, help="detections kept per image")
    det.add_argument("--defect-labels", help="comma-separated labels that mean a defect (default: all)")
    det.add_argument("--outputs", help="boxes=NAME,classes=NAME,scores=NAME,count=NAME when not found")
    det.add_argument("--force", action="store_true", help="overwrite an existing card")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    path = require_file(args.model, "model")
    if path.suffix != ".tflite":
        raise InspectError(f"model must be a .tflite file, got {path}", ExitStatus.USAGE)
    target = card_path_for(path)
    if target.exists() and not args.force:
        raise InspectError(f"{target} exists; pass --force to replace it", ExitStatus.CANT_CREATE)
    model = TFLiteModel(path, num_threads=1)
    labels = labels_from_file(args.labels)
    task = (
        args.task if args.task != "auto" else ("detection" if len(model.outputs) == 4 else "classification")
    )
    tensor = model.inputs[0]
    mean, std = default_normalisation(tensor)
    spec = InputSpec(
        name=tensor.name, shape=tensor.shape, dtype=tensor.dtype, quantization=tensor.quantization,
        color_order=args.color_order, resize=args.resize, mean=args.mean or mean, std=args.std or std,
    )  # fmt: skip
    common: dict[str, Any] = {
        "name": args.name or path.stem,
        "version": args.model_version,
        "good_label": args.good_label,
        "quantization": "int8" if tensor.dtype in ("uint8", "int8") else "float32",
        "thresholds": Thresholds(defect=args.threshold, source="inspect-model card --threshold"),
        "source_model": {"imported": str(path)},
    }
    try:
        card = _card(task, args, path, model, labels, spec, common)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "card"
        raise InspectError(
            f"cannot write a card for {path}: {where}: {first['msg']}", ExitStatus.DATA_ERROR
        ) from exc
    save_card(card, target)
    print(f"wrote {target}: task {task}, {len(labels)} labels, input {spec.dtype}{spec.shape} "
          f"mean {spec.mean} std {spec.std}"
          + (f", outputs {card.detection.outputs.model_dump()}" if card.detection else ""))  # fmt: skip
    return int(ExitStatus.OK)


def _card(task: str, args: argparse.Namespace, path: Path, model: TFLiteModel, labels: list[str],
          spec: InputSpec, common: dict[str, Any]) -> ModelCard:  # fmt: skip
    if task == "classification":
        classes = model.outputs[0].shape[-1] if len(model.outputs) == 1 else None
        if classes != len(labels):
            raise InspectError(
                f"a classifier needs one output with a probability per label: {len(labels)} labels, outputs "
                + ", ".join(f"{t.name} {t.dtype}{t.shape}" for t in model.outputs),
                ExitStatus.DATA_ERROR,
            )
        return card_for(path, model, labels, spec, None, **common)
    roles = _parse_outputs(args.outputs) or find_output_roles(model.outputs, signature_outputs(path))
    defects = [s.strip() for s in args.defect_labels.split(",")] if args.defect_labels else None
    detection = DetectionSpec(
        outputs=roles, label_offset=args.label_offset, score_threshold=args.score_threshold,
        max_detections=args.max_detections, defect_labels=defects,
    )  # fmt: skip
    return card_for(path, model, labels, spec, detection, **common)
