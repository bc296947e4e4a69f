"""``inspect-model train --task anomaly``: a good-only anomaly model, calibrated and ready to convert.

    inspect-model train --task anomaly --data data/washers --out runs/washers --input-size 128

Trains on the ``good/`` images only (a split of them is held out); any defect folders, with
their masks when present, are used only to calibrate and report. Writes ``model.keras``
(image -> anomaly_score and heatmap), ``training.json`` with the image and pixel thresholds
and the min/max that normalise scores to 0..1 (threshold at 0.5, as anomalib does), and
``curves.png``. ``convert`` turns these into the model card's ``anomaly`` section.
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from agent.modelcard import AnomalyNormalization, InputSpec, file_sha256
from agent.status import ExitStatus, InspectError
from tools.dataset import LabelledImages, load_images
from tools.localization import localization_metrics, pixel_threshold_for_f1, upsample
from tools.metrics import classification_metrics, flagged_per_folder
from tools.tf_util import import_tensorflow, tool_versions, tqdm_epochs

__all__ = ["ANOMALY_LABEL", "run_anomaly"]

log = logging.getLogger(__name__)

ANOMALY_LABEL = "anomaly"
MIN_GOOD = 10  # fewer good images than this cannot be split into training and held-out sets


def run_anomaly(args: argparse.Namespace, spec: InputSpec, out: Path) -> dict[str, Any]:
    """Train, calibrate and save; returns the training record (also written to training.json)."""
    from tools.anomaly_models import build_anomaly_model, fit_teacher_statistics

    started = time.monotonic()
    data = load_images(args.data, spec, good_label=args.good_label)
    train_good, calibration = _split(data, args)
    tf = import_tensorflow()
    import keras

    keras.utils.set_random_seed(args.seed)
    shape = (spec.height, spec.width, spec.channels)
    train_model, deploy = build_anomaly_model(args.method, shape, args.width, args.seed)
    if args.method == "student-teacher":
        fit_teacher_statistics(train_model, train_good)
        loss: Any = _mean_of_prediction
        targets = np.zeros((len(train_good), 1), np.float32)  # unused by the loss
    else:
        loss = "mae"
        targets = train_good.astype(np.float32) / 255.0
    train_model.compile(optimizer=keras.optimizers.Adam(args.lr), loss=loss)
    log.info(
        "anomaly model (%s): %d parameters, %d good training images, calibration %s",
        args.method, deploy.count_params(), len(train_good), calibration.summary(),
    )  # fmt: skip
    history = train_model.fit(
        _dataset(tf, train_good, targets, args),
        epochs=args.epochs,
        callbacks=[tqdm_epochs(args.epochs)],
        verbose=0,
    ).history
    deploy.save(out / "model.keras")
    outputs = deploy.predict(calibration.pixels.astype(np.float32), batch_size=64, verbose=0)
    record = _calibrate(outputs["anomaly_score"][:, 0], outputs["heatmap"][..., 0], calibration, spec)
    record.update(
        {
            "task": "anomaly",
            "method": args.method,
            "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items() if k != "func"},
            "labels": [args.good_label, ANOMALY_LABEL],
            "good_label": args.good_label,
            "input": spec.model_dump(mode="json", include={"shape", "color_order", "resize", "mean", "std"}),
            "parameters": int(deploy.count_params()),
            "data": {
                "source": str(args.data),
                "train": {"images": len(train_good), "classes": {args.good_label: len(train_good)}},
                "validation": calibration.summary(),
            },
            "history": {k: [float(v) for v in vals] for k, vals in history.items()},
            "best_epoch": len(history["loss"]),
            "epochs_run": len(history["loss"]),
            "model_sha256": file_sha256(out / "model.keras"),
            "tools": tool_versions(),
            "seconds": round(time.monotonic() - started, 1),
        }
    )
    return record


def _mean_of_prediction(target: Any, predicted: Any) -> Any:
    """The student's loss: its squared error to the teacher, which the model already outputs."""
    import keras

    del target
    return keras.ops.mean(predicted, axis=(1, 2, 3))


def _split(data: LabelledImages, args: argparse.Namespace) -> tuple[np.ndarray, LabelledImages]:
    """Good training pixels, and the calibration set: held-out good images plus every defect image."""
    if args.good_label not in data.class_names:
        raise InspectError(
            f"no {args.good_label!r} folder in {args.data} (classes {data.class_names}): an anomaly model "
            "trains on good images only; pass --good-label if they are named otherwise",
            ExitStatus.DATA_ERROR,
        )
    good_index = data.class_names.index(args.good_label)
    good = np.flatnonzero(data.labels == good_index)
    if len(good) < MIN_GOOD:
        raise InspectError(
            f"only {len(good)} good image(s) in {args.data}: need at least {MIN_GOOD} "
            "to train and hold some out for the thresholds",
            ExitStatus.DATA_ERROR,
        )
    order = np.random.default_rng(args.seed).permutation(good)
    held = max(2, round(len(good) * args.val_fraction))
    train_idx, held_idx = np.sort(order[held:]), order[:held]
    calibration = data.subset(np.sort(np.concatenate([held_idx, np.flatnonzero(data.labels != good_index)])))
    calibration.kinds = [calibration.class_names[i] for i in calibration.labels]
    calibration.labels = (calibration.labels != good_index).astype(np.int64)  # 0 good, 1 anomaly
    calibration.class_names = [args.good_label, ANOMALY_LABEL]
    return data.pixels[train_idx], calibration


def _dataset(tf: Any, pixels: np.ndarray, targets: np.ndarray, args: argparse.Namespace) -> Any:
    """Shuffled batches; flips only (a good part flipped is still a good part, a rotated belt may not be)."""
    ds = tf.data.Dataset.from_tensor_slices((pixels, targets)).shuffle(len(pixels), seed=args.seed)
    ds = ds.batch(args.batch_size)
    if args.no_augment or args.flip == "none":
        return ds.map(lambda x, y: (tf.cast(x, tf.float32), y)).prefetch(tf.data.AUTOTUNE)
    same_shape = targets.ndim == 4  # the autoencoder's target is the image: flip both together

    def flip(x: Any, y: Any) -> Any:
        x = tf.cast(x, tf.float32)
        both = tf.concat([x, y * 255.0], axis=-1) if same_shape else x
        if args.flip in ("horizontal", "both"):
            both = tf.cond(tf.random.uniform(()) < 0.5, lambda: tf.reverse(both, [2]), lambda: both)
        if args.flip in ("vertical", "both"):
            both = tf.cond(tf.random.uniform(()) < 0.5, lambda: tf.reverse(both, [1]), lambda: both)
        channels = x.shape[-1]
        return (both[..., :channels], both[..., channels:] / 255.0) if same_shape else (both, y)

    return ds.map(flip, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)


def _image_threshold(scores: np.ndarray, is_anomaly: np.ndarray) -> tuple[float, str]:
    """Youden's J (recall minus false-positive rate) on held-out good + defect images; good-only: their max.

    Not F1 (anomalib's adaptive threshold): F1 depends on the calibration set's defect share, and
    with more defect than good images in it the best F1 was to flag every part (measured: recall
    1.0 at precision 0.63 on the washer set of docs/anomaly.md). J weighs both classes alike.
    """
    good = scores[~is_anomaly]
    if not is_anomaly.any():
        return float(good.max()), f"highest score of {len(good)} held-out good images (no defects given)"
    from sklearn.metrics import roc_curve

    fpr, tpr, thresholds = roc_curve(is_anomaly, scores)
    best = int(np.argmax(tpr - fpr))
    chosen = float(thresholds[best])
    if not np.isfinite(chosen):  # recall never beats the false-positive rate: no better than flagging none
        return float(good.max()), f"highest score of {len(good)} held-out good images (no separation)"
    # The curve flags score >= t; ours is score > t: sit halfway to the next lower score.
    lower = scores[scores < chosen]
    threshold = (chosen + float(lower.max())) / 2 if lower.size else chosen - 1e-6
    return threshold, (
        f"best recall - false-positive rate ({tpr[best]:.3f} - {fpr[best]:.3f}) on {len(good)} held-out good "
        f"and {int(is_anomaly.sum())} defect images"
    )


def _calibrate(
    scores: np.ndarray, maps: np.ndarray, calibration: LabelledImages, spec: InputSpec
) -> dict[str, Any]:
    is_anomaly = calibration.labels == 1
    image_threshold, image_source = _image_threshold(scores, is_anomaly)
    full = upsample(maps, spec.height, spec.width)
    masks, known = calibration.masks, calibration.mask_known
    has_masks = masks is not None and known is not None and bool(calibration.summary().get("defect_masks"))
    if has_masks and masks is not None and known is not None:
        pixel_threshold, f1 = pixel_threshold_for_f1(full[known], masks[known])
        pixel_source = f"best pixel F1 ({f1:.3f}) on {int(known.sum())} images with masks"
    else:
        # The score is the (smoothed) map maximum, so cells above the image threshold are where it comes from.
        pixel_threshold, pixel_source = image_threshold, "the image threshold (no defect masks given)"
    low = float(min(scores.min(), maps.min()))
    high = float(max(scores.max(), maps.max()))
    if not high > low:
        raise InspectError(
            "every calibration score is the same: the model learned nothing", ExitStatus.CHECK_FAILED
        )
    norm = AnomalyNormalization(
        image_threshold=image_threshold,
        pixel_threshold=pixel_threshold,
        min=low,
        max=high,
        source=f"image: {image_source}; pixel: {pixel_source}",
    )
    normalised = np.clip(norm.shifted(scores, image_threshold), 0.0, 1.0)
    probs = np.stack([1.0 - normalised, normalised], axis=1)
    heatmap: dict[str, Any] = {
        "output": "heatmap",
        "kind": "anomaly_map",
        "threshold": pixel_threshold,
        "source": pixel_source,
    }
    if has_masks and masks is not None and known is not None:
        unit = np.clip(norm.shifted(full, pixel_threshold), 0.0, 1.0)
        heatmap["validation"] = localization_metrics(unit, masks, known, 0.5)
    return {
        "anomaly": norm.model_dump(mode="json"),
        "thresholds": {"defect": 0.5, "source": "normalised anomaly score: the image threshold maps to 0.5"},
        "heatmap": heatmap,
        "validation": classification_metrics(calibration.labels, probs, calibration.class_names, 0, 0.5),
        "validation_flagged_per_folder": flagged_per_folder(calibration.kinds or [], normalised > 0.5),
    }
