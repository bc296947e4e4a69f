"""``inspect-model convert`` for a detector trained by ``train --task detection``.

The training heads get the in-graph post-processing (``tools/detector.py``), so every variant ends
in the four outputs of TFLite_Detection_PostProcess. The int8 variant takes uint8/int8 pixels and
keeps float outputs: class ids and box corners must not be rounded to 256 levels. Each variant is
run in the device's interpreter on the representative images and compared with the Keras model:
it must agree (defect or not, and the best box) on ``--min-agreement`` of them.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Any

import numpy as np

from agent.bundle import load_bundle
from agent.detection import find_output_roles
from agent.model import TFLiteModel
from agent.modelcard import DetectionSpec, Thresholds, card_path_for, file_sha256, save_card
from agent.status import ExitStatus, InspectError
from tools._cli_util import ensure_output_dir
from tools.dataset import sample_images
from tools.detect_card import card_for, signature_outputs
from tools.detect_metrics import Found, iou
from tools.source_model import ModelMeta, SourceModel, input_spec
from tools.tf_util import import_tensorflow

__all__ = ["is_detector_run", "run"]

log = logging.getLogger(__name__)


def is_detector_run(args: argparse.Namespace) -> bool:
    """True when the model's training record says ``task: detection``."""
    record = args.training_json or args.model.parent / "training.json"
    try:
        return bool(json.loads(record.read_text()).get("task") == "detection")
    except (OSError, ValueError):
        return False


def _agreement(expected: list[list[Found]], got: list[list[Found]], threshold: float) -> float:
    """Share of images where the variant agrees with the Keras model as the device would use it.

    Both see a defect (a detection above ``threshold``) or neither does; when both do, the Keras
    model's best box is among the variant's (same label, IoU >= 0.5). Near-equal peaks may swap
    rank under int8 rounding, so the variant's best box need not be the same one.
    """
    same = 0
    for want, have in zip(expected, got, strict=True):
        best = max((f for f in want if f.score > threshold), key=lambda f: f.score, default=None)
        flagged = [f for f in have if f.score > threshold]
        if best is None or not flagged:
            same += best is None and not flagged
        else:
            same += any(f.label == best.label and iou(f.box, best.box) >= 0.5 for f in flagged)
    return float(same) / max(1, len(expected))


def run(args: argparse.Namespace) -> int:
    import_tensorflow()
    import keras

    from tools.convert import VARIANTS, convert_variant
    from tools.detector import with_postprocess
    from tools.train_detect import predict_detections

    record_path = args.training_json or args.model.parent / "training.json"
    record = json.loads(record_path.read_text())
    labels, detection = list(record["labels"]), record["detection"]
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    if not variants or set(variants) - set(VARIANTS):
        raise InspectError(f"--variants: choose from {', '.join(VARIANTS)}, got {args.variants!r}",
                           ExitStatus.USAGE)  # fmt: skip
    out = ensure_output_dir(args.out)
    name = args.name or (args.model.parent.name if args.model.stem == "model" else args.model.stem)
    heads = keras.models.load_model(str(args.model), compile=False)
    exported = with_postprocess(heads, len(labels), int(detection["max_detections"]))
    meta = ModelMeta(
        labels=labels,
        good_label=record.get("good_label"),
        color_order=record["input"]["color_order"],
        resize=record["input"].get("resize", "stretch"),
    )
    height, width, channels = (int(d) for d in record["input"]["shape"][1:])
    shape = (height, width, channels)
    source = SourceModel(args.model, "keras", shape, 4, file_sha256(args.model), exported)
    float_spec = input_spec(meta, shape)
    rep = sample_images(
        args.rep_data or Path(record["data"]["source"]), float_spec, args.rep_samples, args.seed
    )
    reference = predict_detections(exported, rep, labels)
    # The decision sees only detections that pass the score threshold: keep it at or below the defect one.
    threshold = min(
        float(detection["score_threshold"]), np.floor(record["thresholds"]["defect"] * 1000) / 1000
    )
    failed = []
    for variant in variants:
        path = out / f"{name}_{variant}.tflite"
        path.write_bytes(convert_variant(source, variant, rep, args.int8_io, float_outputs=True))
        model = TFLiteModel(path, num_threads=1)
        spec = input_spec(meta, shape, model.inputs[0])
        spec_detection = DetectionSpec(
            outputs=find_output_roles(model.outputs, signature_outputs(path)),
            score_threshold=threshold, max_detections=int(detection["max_detections"]),
        )  # fmt: skip
        card = card_for(
            path, model, labels, spec, spec_detection, name=name, version=args.model_version,
            good_label=meta.good_label, quantization=variant,
            thresholds=Thresholds(**record["thresholds"]),
            training={"data": record.get("data", {}), "epochs_run": record.get("epochs_run")},
            source_model={"path": str(args.model), "format": "keras", "sha256": source.sha256},
            metrics={"validation_source_model": {k: record["validation"].get(k) for k in
                                                 ("images", "map", "precision", "recall", "iou")}},
        )  # fmt: skip
        save_card(card, card_path_for(path))
        agreement = _agreement(reference, _tflite_detections(path, rep), threshold)
        card.metrics["verification"] = {
            "samples": len(rep),
            "detection_agreement": agreement,
            "min_agreement": args.min_agreement,
            "passed": agreement >= args.min_agreement,
            "interpreter": model.backend,
        }
        save_card(card, card_path_for(path))
        if agreement < args.min_agreement:
            failed.append(variant)
        print(f"{variant:<9} {path.stat().st_size:>10} bytes  detection agreement {agreement:.4f}  {path}")
    if failed:
        raise InspectError(
            f"detections differ from the Keras model's on more than 1 - {args.min_agreement} of "
            f"{len(rep)} images for {failed}; their cards say verification.passed=false",
            ExitStatus.CHECK_FAILED,
        )
    return int(ExitStatus.OK)


def _tflite_detections(path: Path, pixels: np.ndarray) -> list[list[Found]]:
    """The variant run as the agent runs it (its bundle), on pixels already at model size."""
    bundle = load_bundle(path, num_threads=1)
    found: list[list[Found]] = []
    channel_order: Any = bundle.card.input.color_order
    for image in pixels:
        # Pixels are in the model's colour order; the bundle expects a camera (BGR/grey) frame.
        frame = image[:, :, ::-1] if channel_order == "RGB" else image
        scores, _ = bundle.classify(np.ascontiguousarray(frame))
        found.append([Found(d.label, d.score, d.box) for d in scores.detections])
    return found
