"""``inspect-model train --task detection``: the tiny CenterNet-style detector of ``tools/detector.py``.

    inspect-model synth --out data/parts --count 1500 --size 128
    inspect-model train --task detection --data data/parts --out runs/det --input-size 128 --epochs 40
    inspect-model convert --model runs/det/model.keras --out models/ --variants float32,int8

Boxes come from the defect masks beside the images (``masks/<label>/<name>``, as ``synth`` writes
them, or MVTec's ``ground_truth``): one box per defect image around its mask, the image's class
folder naming the defect. Good images teach the background. Writes ``model.keras`` (the training
heads; ``convert`` appends the post-processing) and ``training.json`` with held-out mAP@0.5 and a
defect threshold on the best detection's score calibrated for ``--target-recall``.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from agent.modelcard import InputSpec, file_sha256
from agent.status import ExitStatus, InspectError
from tools.dataset import LabelledImages, load_images, stratified_split
from tools.detect_metrics import Found, Truth, detection_metrics
from tools.metrics import threshold_for_recall
from tools.synth_parts import mask_box
from tools.tf_util import import_tensorflow, tool_versions

__all__ = ["boxes_of", "predict_detections", "run"]

log = logging.getLogger(__name__)

SCORE_THRESHOLD = 0.3  # detections kept for regions; the defect threshold decides NG
EAGER_MAX_STEPS = 50


GtBox = tuple[int, float, float, float, float]  # class id, x0, y0, x1, y1 in input pixels


def boxes_of(data: LabelledImages, defect_labels: list[str]) -> list[list[GtBox]]:
    """Per image its ground-truth boxes (class id among ``defect_labels``, x0, y0, x1, y1) from the mask."""
    if data.masks is None or data.mask_known is None:
        raise InspectError("detection training needs defect masks beside the images", ExitStatus.DATA_ERROR)
    boxes: list[list[GtBox]] = []
    for label, mask, known in zip(data.labels, data.masks, data.mask_known, strict=True):
        name = data.class_names[int(label)]
        box = mask_box(mask > 127) if known and name in defect_labels else None
        if box is None:
            boxes.append([])
        else:
            x0, y0, x1, y1 = (float(v) for v in box)
            boxes.append([(defect_labels.index(name), x0, y0, x1, y1)])
    return boxes


def _flipped(
    pixels: np.ndarray, boxes: list[list[GtBox]], rng: np.random.Generator
) -> tuple[np.ndarray, list[list[GtBox]]]:
    """Random horizontal and vertical flips, boxes flipped with their images (parts have no up or left)."""
    out = pixels.copy()
    size_y, size_x = pixels.shape[1:3]
    moved = []
    for i, image_boxes in enumerate(boxes):
        flip_x, flip_y = rng.random() < 0.5, rng.random() < 0.5
        if flip_x:
            out[i] = out[i, :, ::-1]
        if flip_y:
            out[i] = out[i, ::-1]
        moved.append([
            (c, size_x - x1 if flip_x else x0, size_y - y1 if flip_y else y0,
             size_x - x0 if flip_x else x1, size_y - y0 if flip_y else y1)
            for c, x0, y0, x1, y1 in image_boxes
        ])  # fmt: skip
    return out, moved


def predict_detections(
    model: Any, pixels: np.ndarray, labels: list[str], threshold: float = 0.0
) -> list[list[Found]]:
    """Run a post-processing (4-output) Keras model image by image -> detections in input pixels."""
    found = []
    height, width = pixels.shape[1:3]
    for image in pixels:
        out = model(image[None].astype(np.float32), training=False)
        boxes, classes, scores = (np.asarray(out[k])[0] for k in ("boxes", "classes", "scores"))
        found.append([
            Found(labels[int(c)], float(s), (b[1] * width, b[0] * height, b[3] * width, b[2] * height))
            for b, c, s in zip(boxes, classes, scores, strict=True) if s >= threshold
        ])  # fmt: skip
    return found


def _eager_loss(model: Any, loss: Any, pixels: np.ndarray, targets: np.ndarray, batch: int = 64) -> float:
    """The mean loss over a set, batch by batch (the focal loss is normalised per batch, as in training)."""
    values = [
        float(loss(targets[i : i + batch], model(pixels[i : i + batch], training=False)))
        for i in range(0, len(pixels), batch)
    ]
    return float(np.mean(values))


def run(args: argparse.Namespace) -> int:
    started = time.monotonic()
    from tools._cli_util import ensure_output_dir

    out = ensure_output_dir(args.out)
    if args.input_size % 8:
        raise InspectError(f"--input-size must be a multiple of 8 for the detector, got {args.input_size}",
                           ExitStatus.USAGE)  # fmt: skip
    spec = InputSpec(
        name="image", shape=[1, args.input_size, args.input_size, 1 if args.color == "gray" else 3],
        dtype="float32", color_order="GRAY" if args.color == "gray" else "RGB", resize=args.resize,
    )  # fmt: skip
    data = load_images(args.data, spec, good_label=args.good_label)
    defects = [name for name in data.class_names if name != args.good_label]
    if not defects:
        raise InspectError(
            f"{args.data} has no defect classes besides {args.good_label!r}", ExitStatus.DATA_ERROR
        )
    train_idx, val_idx = stratified_split(data.labels, args.val_fraction, args.seed)
    train_set, val_set = data.subset(train_idx), data.subset(val_idx)
    train_boxes, val_boxes = boxes_of(train_set, defects), boxes_of(val_set, defects)
    if not any(train_boxes):
        raise InspectError(f"no defect masks found beside {args.data}: a detector needs boxes",
                           ExitStatus.DATA_ERROR)  # fmt: skip
    import_tensorflow()
    import keras

    from tools.detector import STRIDE, build_detector, encode_targets, heads_loss, with_postprocess

    keras.utils.set_random_seed(args.seed)
    model = build_detector((spec.height, spec.width, spec.channels), len(defects), args.width)
    steps = args.epochs * -(-len(train_set) // args.batch_size)
    schedule = keras.optimizers.schedules.CosineDecay(args.lr, decay_steps=steps, alpha=0.05)
    # No XLA: compiling the focal loss took longer than training a small run.
    loss = heads_loss(len(defects))
    # Tracing the train step takes tens of seconds on a small CPU: for a few steps, eager is faster.
    eager = steps <= EAGER_MAX_STEPS
    model.compile(optimizer=keras.optimizers.Adam(schedule), loss=loss, jit_compile=False, run_eagerly=eager)
    log.info("detector: %d parameters, input %s, classes %s", model.count_params(), spec.shape, defects)
    grid = args.input_size // STRIDE
    val_targets = encode_targets(val_boxes, grid, len(defects), args.input_size)
    rng = np.random.default_rng(args.seed)
    history: dict[str, list[float]] = {"loss": [], "val_loss": []}
    from tqdm import tqdm

    val_pixels = val_set.pixels.astype(np.float32)
    best_weights = None
    for _ in tqdm(range(args.epochs), desc="epochs", unit="epoch"):
        if args.no_augment:
            pixels, boxes = train_set.pixels, train_boxes
        else:
            pixels, boxes = _flipped(train_set.pixels, train_boxes, rng)
        targets = encode_targets(boxes, grid, len(defects), args.input_size)
        fit = model.fit(pixels.astype(np.float32), targets, batch_size=args.batch_size, epochs=1, verbose=0)
        history["loss"].append(float(fit.history["loss"][-1]))
        # Eagerly, not through fit's validation_data: tracing a test step cost more than a small run.
        history["val_loss"].append(_eager_loss(model, loss, val_pixels, val_targets))
        if history["val_loss"][-1] <= min(history["val_loss"]):
            best_weights = model.get_weights()
    model.set_weights(best_weights)
    model.save(out / "model.keras")
    exported = with_postprocess(model, len(defects), args.max_detections)
    found = predict_detections(exported, val_set.pixels, defects)
    truths = [[Truth(defects[c], (x0, y0, x1, y1)) for c, x0, y0, x1, y1 in b] for b in val_boxes]
    image_scores = np.array([max((f.score for f in image), default=0.0) for image in found])
    choice = threshold_for_recall(np.array([bool(b) for b in val_boxes]), image_scores, args.target_recall)
    record = {
        "task": "detection",
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items() if k != "func"},
        "labels": defects,
        "good_label": args.good_label,
        "input": spec.model_dump(mode="json", include={"shape", "color_order", "resize", "mean", "std"}),
        "detection": {
            "stride": STRIDE, "max_detections": args.max_detections, "score_threshold": SCORE_THRESHOLD,
        },
        "parameters": int(model.count_params()),
        "data": {"source": str(args.data), "train": train_set.summary(), "validation": val_set.summary()},
        "history": history,
        "epochs_run": args.epochs,
        "best_epoch": int(np.argmin(history["val_loss"])) + 1,
        "validation": {
            "images": len(val_set),
            **detection_metrics(truths, found, defects, 0.5, SCORE_THRESHOLD),
            "defect_threshold": choice.as_dict(),
        },
        "thresholds": {"defect": choice.threshold, "target_recall": args.target_recall,
                       "source": f"validation set, {len(val_set)} images, best detection score per image"},
        "model_sha256": file_sha256(out / "model.keras"),
        "tools": tool_versions(),
        "seconds": round(time.monotonic() - started, 1),
    }  # fmt: skip
    (out / "training.json").write_text(json.dumps(record, indent=2) + "\n")
    val = record["validation"]
    print(
        f"trained {args.epochs} epochs in {record['seconds']} s; validation mAP@0.5 {val['map']}, "
        f"precision {val['precision']} recall {val['recall']} at score >= {SCORE_THRESHOLD}; "
        f"defect threshold {choice.threshold:.4f} -> image recall {choice.recall:.4f} "
        f"precision {choice.precision:.4f}\n"
        f"wrote {out / 'model.keras'}, {out / 'training.json'}"
    )
    return int(ExitStatus.OK)
