"""``inspect-model train``: a small CNN from scratch on an ImageFolder tree or manifest CSV.

    inspect-model train --data data/parts --out runs/parts --input-size 128 --epochs 30

Writes ``model.keras`` (the best epoch by validation loss), ``training.json``
(arguments, data summary, history, validation metrics, a defect threshold
calibrated for ``--target-recall``) and ``curves.png``. ``convert`` reads
``training.json`` to fill the model card.
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
from tools._cli_util import HelpFormatter, ensure_output_dir
from tools.dataset import LabelledImages, load_images, stratified_split
from tools.metrics import classification_metrics, defect_scores, threshold_for_recall
from tools.tf_util import import_tensorflow, tool_versions, tqdm_epochs
from tools.train_budget import (
    EpochClock,
    adjustable_cosine,
    budget_callback,
    finish_reserve_s,
    split_deadline,
)
from tools.train_data import class_weights, make_dataset

__all__ = ["TRAINING_JSON", "add_parser", "run"]

log = logging.getLogger(__name__)

TRAINING_JSON = "training.json"


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "train",
        help="train a good/defect CNN from scratch",
        description=__doc__,
        formatter_class=HelpFormatter,
    )
    p.add_argument(
        "--data", type=Path, required=True, help="ImageFolder tree (class sub-folders) or manifest .csv"
    )
    p.add_argument(
        "--task",
        choices=["classification", "anomaly", "detection"],
        default="classification",
        help="classification: good and defect folders; anomaly: learn from good/ only (defect folders, "
        "if any, only calibrate the thresholds and are reported); detection: a tiny CenterNet-style "
        "detector on defect boxes from the masks (docs/detection.md); sensor series: --task timeseries",
    )
    p.add_argument(
        "--max-detections", type=int, default=10, help="detection: boxes per image the model returns"
    )
    p.add_argument("--val-data", type=Path, help="validation set (default: a stratified split of --data)")
    p.add_argument(
        "--out", type=Path, required=True, help="run folder for model.keras, training.json, curves.png"
    )
    p.add_argument(
        "--method",
        choices=["student-teacher", "autoencoder"],
        default="student-teacher",
        help="anomaly model design (docs/anomaly.md compares them)",
    )
    p.add_argument("--good-label", default="good", help="the class that means a good part")
    p.add_argument("--input-size", type=int, default=128, help="square input side in pixels")
    p.add_argument("--color", choices=["rgb", "gray"], default="rgb", help="colour or greyscale input")
    p.add_argument(
        "--resize", choices=["stretch", "letterbox"], default="stretch", help="how images meet the input"
    )
    p.add_argument("--width", type=float, default=1.0, help="channel width multiplier (0.5 = ~4x fewer MACs)")
    p.add_argument(
        "--epochs", type=int, default=30, help="epochs with the classifier (at most, with --time-budget)"
    )
    p.add_argument(
        "--time-budget",
        type=float,
        metavar="MINUTES",
        help="finish within this many minutes of wall time, data loading included: after each epoch the "
        "epochs that still fit are re-planned from the measured epoch times and the learning-rate "
        "schedule ends at the new last epoch (classification only)",
    )
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=2e-3, help="initial Adam learning rate (cosine decay to 5%%)")
    p.add_argument(
        "--patience", type=int, default=10, help="early stopping: epochs without val_loss improvement"
    )
    p.add_argument("--min-epochs", type=int, default=15, help="early stopping never stops before this epoch")
    p.add_argument("--val-fraction", type=float, default=0.2)
    p.add_argument(
        "--target-recall", type=float, default=0.98, help="defect recall the calibrated threshold keeps"
    )
    p.add_argument("--no-class-weights", action="store_true", help="do not reweight classes by frequency")
    p.add_argument(
        "--class-balance",
        choices=["good-vs-defect", "per-class"],
        default="good-vs-defect",
        help="good-vs-defect (default): good parts weigh as much as all defects together, the kinds share "
        "the rest; per-class: every class the same total weight (scikit-learn's 'balanced')",
    )
    p.add_argument(
        "--defect-maps",
        choices=["auto", "on", "off"],
        default="auto",
        help="train a defect-map head on defect masks (auto: when masks are found); export drops it",
    )
    p.add_argument("--map-weight", type=float, default=1.0, help="weight of the defect-map loss")
    p.add_argument(
        "--map-context",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="the defect map also reads the deepest features, upsampled, for shape defects like chipped "
        "edges (default: on; --no-map-context for the plain 1/8 head)",
    )
    p.add_argument(
        "--map-epochs",
        type=int,
        help="epochs training the defect map alone before the classifier joins, when defect masks are "
        "used (default: 40%% of --epochs; 0 = train both from the start)",
    )
    p.add_argument(
        "--map-pos-weight", type=float, default=10.0, help="weight of defect cells in the defect-map loss"
    )
    p.add_argument("--seed", type=int, default=0)
    aug = p.add_argument_group("augmentation (on the fly, training images only)")
    aug.add_argument("--no-augment", action="store_true", help="switch all augmentation off")
    aug.add_argument("--flip", choices=["none", "horizontal", "vertical", "both"], default="both")
    aug.add_argument("--rotate", type=float, default=180.0, help="max rotation in degrees")
    aug.add_argument("--shift", type=float, default=0.05, help="max shift as a fraction of the side")
    aug.add_argument("--brightness", type=float, default=0.2, help="max brightness change, fraction of range")
    aug.add_argument("--contrast", type=float, default=0.2, help="max contrast change factor")
    aug.add_argument("--noise", type=float, default=3.0, help="Gaussian pixel noise sigma (0..255 scale)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.time_budget is not None and (args.task != "classification" or args.time_budget <= 0):
        raise InspectError(
            "--time-budget takes a positive number of minutes and applies to --task classification only",
            ExitStatus.USAGE,
        )
    if args.task == "detection":
        from tools.train_detect import run as train_detector

        return train_detector(args)
    started = time.monotonic()
    out = ensure_output_dir(args.out)
    spec = InputSpec(
        name="image",
        shape=[1, args.input_size, args.input_size, 1 if args.color == "gray" else 3],
        dtype="float32",
        color_order="GRAY" if args.color == "gray" else "RGB",
        resize=args.resize,
    )
    if args.task == "anomaly":
        return _run_anomaly(args, spec, out)
    train_set, val_set = _load_split(args, spec)
    good_index = _good_index(train_set.class_names, args.good_label)
    tf = import_tensorflow()
    import keras

    keras.utils.set_random_seed(args.seed)
    from tools.architectures import MAP_STRIDE, build_classifier, deployable

    use_maps = _use_defect_maps(args, train_set)
    args.map_context = use_maps and args.map_context  # training.json records the head that was built
    model = build_classifier(
        (spec.height, spec.width, spec.channels),
        len(train_set.class_names),
        args.width,
        defect_map=use_maps,
        map_context=args.map_context,
    )
    steps_per_epoch = -(-len(train_set) // args.batch_size)
    _compile(keras, model, args, use_maps, steps=args.epochs * steps_per_epoch)
    log.info(
        "model: %d parameters, input %s, defect-map head: %s", model.count_params(), spec.shape, use_maps
    )
    weights = None
    if not args.no_class_weights:
        per_good = good_index if args.class_balance == "good-vs-defect" else None
        weights = class_weights(train_set.labels, len(train_set.class_names), per_good)
    stride = MAP_STRIDE if use_maps else None
    monitor = "val_probabilities_loss" if use_maps else "val_loss"
    checkpoint = out / ".best.weights.h5"
    train_data = make_dataset(tf, train_set, args, True, weights, stride)
    val_data = make_dataset(tf, val_set, args, False, None, stride)
    if args.map_epochs is None:
        # Measured on 2,000 synthetic images: with the map first, held-out AUC 0.88 after 12+24 epochs;
        # training both from the start stayed at chance for 18 epochs (docs/model-report.md).
        args.map_epochs = round(0.4 * args.epochs)
    if not use_maps:
        args.map_epochs = 0
    deadline: float | None = None
    if args.time_budget is not None:
        deadline = started + 60.0 * args.time_budget - finish_reserve_s(60.0 * args.time_budget)
    if args.map_epochs > 0:
        map_clock = None
        if deadline is not None:
            map_deadline = split_deadline(time.monotonic(), deadline, args.map_epochs, args.epochs)
            map_clock = EpochClock(map_deadline, args.map_epochs)
        _pretrain_map(keras, model, args, train_data, _calibration_sample(train_set, args.seed), map_clock)
        if map_clock is not None:
            args.map_epochs = len(map_clock.durations)  # training.json records what ran
    schedule = _compile(keras, model, args, use_maps, steps=args.epochs * steps_per_epoch)
    callbacks = _callbacks(keras, checkpoint, args, _calibration_sample(train_set, args.seed), monitor)
    clock = None
    if deadline is not None:
        clock = EpochClock(deadline, args.epochs)
        callbacks.insert(0, budget_callback(clock, steps_per_epoch, schedule))
    history = model.fit(
        train_data,
        validation_data=val_data,
        epochs=args.epochs,
        callbacks=callbacks,
        shuffle=False,  # the tf.data pipeline shuffles
        verbose=0,
    ).history
    late_s = 0.0 if clock is None else time.monotonic() - clock.deadline
    if clock is not None and late_s > 0:
        log.warning(
            "--time-budget %g min: passed by %.0f s; an epoch takes ~%.0f s here, and a phase always runs "
            "at least one",
            args.time_budget,
            late_s,
            clock.typical_epoch_s(),
        )
    model.load_weights(checkpoint)
    checkpoint.unlink()
    best, heatmap_kind = deployable(model, good_index)
    best.save(out / "model.keras")
    history = _plain_history(history)
    predicted = best.predict(val_set.pixels.astype(np.float32), batch_size=64, verbose=0)
    probs = predicted["probabilities"]
    scores = defect_scores(probs, good_index)
    choice = threshold_for_recall(val_set.labels != good_index, scores, args.target_recall)
    heatmap = _heatmap_record(heatmap_kind, predicted["heatmap"][..., 0], val_set, choice.threshold)
    best_epoch = int(np.argmin(history[monitor])) + 1
    record = {
        "task": "classification",
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items() if k != "func"},
        "labels": train_set.class_names,
        "good_label": args.good_label,
        "input": spec.model_dump(mode="json", include={"shape", "color_order", "resize", "mean", "std"}),
        "parameters": int(best.count_params()),
        "defect_map_supervision": use_maps,
        "data": {"source": str(args.data), "train": train_set.summary(), "validation": val_set.summary()},
        "class_weights": weights,
        "history": {k: [float(v) for v in vals] for k, vals in history.items()},
        "best_epoch": best_epoch,
        "epochs_run": len(history["val_loss"]),
        "time_budget": None
        if clock is None
        else {
            "minutes": args.time_budget,
            "map_epochs_run": args.map_epochs,
            "epochs_planned_last": clock.planned,
            "typical_epoch_s": round(clock.typical_epoch_s(), 2),
        },
        "validation": classification_metrics(
            val_set.labels, probs, train_set.class_names, good_index, choice.threshold
        ),
        "thresholds": {
            "defect": choice.threshold,
            "target_recall": args.target_recall,
            "source": f"validation set, {len(val_set)} images",
        },
        "heatmap": heatmap,
        "model_sha256": file_sha256(out / "model.keras"),
        "tools": tool_versions(),
        "seconds": round(time.monotonic() - started, 1),
    }
    (out / TRAINING_JSON).write_text(json.dumps(record, indent=2) + "\n")
    from tools.plots import plot_curves

    plot_curves(record["history"], out / "curves.png", best_epoch)
    val = record["validation"]
    print(
        f"trained {record['epochs_run']} epochs in {record['seconds']} s; best epoch {best_epoch}: "
        f"val accuracy {val['accuracy']:.4f}, defect ROC-AUC {val['defect_roc_auc']}, "
        f"threshold {choice.threshold:.4f} -> recall {choice.recall:.4f} precision {choice.precision:.4f}\n"
        f"wrote {out / 'model.keras'}, {out / TRAINING_JSON}, {out / 'curves.png'}"
    )
    return int(ExitStatus.OK)


def _run_anomaly(args: argparse.Namespace, spec: InputSpec, out: Path) -> int:
    from tools.plots import plot_curves
    from tools.train_anomaly import run_anomaly

    record = run_anomaly(args, spec, out)
    (out / TRAINING_JSON).write_text(json.dumps(record, indent=2) + "\n")
    plot_curves(record["history"], out / "curves.png")
    val, norm = record["validation"], record["anomaly"]
    loc = record["heatmap"].get("validation") or {}
    print(
        f"trained {record['epochs_run']} epochs in {record['seconds']} s ({args.method}); held-out "
        f"image ROC-AUC {val['defect_roc_auc']}, pixel ROC-AUC {loc.get('pixel_roc_auc')}, "
        f"PRO {loc.get('pro')}; "
        f"image threshold {norm['image_threshold']:.5g} -> recall {val['defect_recall']:.4f} "
        f"precision {val['defect_precision']:.4f}\n"
        f"wrote {out / 'model.keras'}, {out / TRAINING_JSON}, {out / 'curves.png'}"
    )
    return int(ExitStatus.OK)


def _heatmap_record(
    kind: str, maps: np.ndarray, val_set: LabelledImages, image_threshold: float
) -> dict[str, Any]:
    """The card's heatmap facts: output name, kind, a pixel threshold and how it was chosen.

    A defect map's threshold is the best pixel F1 against the validation masks (0.5 without
    masks). A class activation map is the classifier applied per cell, so its natural pixel
    threshold is the image threshold: a cell is a region when it alone would be called NG.
    """
    from tools.localization import localization_metrics, pixel_threshold_for_f1, upsample

    record: dict[str, Any] = {"output": "heatmap", "kind": kind}
    known, masks = val_set.mask_known, val_set.masks
    has_masks = masks is not None and known is not None and bool(val_set.summary().get("defect_masks"))
    maps = upsample(maps, val_set.pixels.shape[1], val_set.pixels.shape[2])
    if kind == "class_activation":
        record.update(threshold=float(image_threshold), source="the image defect threshold")
    elif has_masks and masks is not None and known is not None:
        threshold, f1 = pixel_threshold_for_f1(maps[known], masks[known])
        record.update(
            threshold=threshold, source=f"best pixel F1 ({f1:.3f}) on {int(known.sum())} validation images"
        )
    else:
        record.update(threshold=0.5, source="default (no validation masks)")
    if has_masks and masks is not None and known is not None:
        record["validation"] = localization_metrics(maps, masks, known, record["threshold"])
    return record


def _load_split(args: argparse.Namespace, spec: InputSpec) -> tuple[LabelledImages, LabelledImages]:
    good = args.good_label if args.defect_maps != "off" else None
    data = load_images(args.data, spec, good_label=good)
    if len(data.class_names) < 2:
        raise InspectError(
            f"{args.data} has a single class {data.class_names}: a classifier needs good and defect examples "
            "(good-only anomaly training is a separate task)",
            ExitStatus.DATA_ERROR,
        )
    if args.val_data:
        val = load_images(args.val_data, spec, class_names=data.class_names, good_label=good)
        train = data
    else:
        train_idx, val_idx = stratified_split(data.labels, args.val_fraction, args.seed)
        train, val = data.subset(train_idx), data.subset(val_idx)
    log.info("train %s, validation %s", train.summary(), val.summary())
    return train, val


def _good_index(class_names: list[str], good_label: str) -> int:
    if good_label not in class_names:
        raise InspectError(
            f"no class named {good_label!r} among {class_names}; pass --good-label with the good class",
            ExitStatus.DATA_ERROR,
        )
    return class_names.index(good_label)


def _calibration_sample(data: LabelledImages, seed: int, count: int = 256) -> np.ndarray:
    index = np.random.default_rng(seed).permutation(len(data))[:count]
    return data.pixels[np.sort(index)]


def _compile(keras: Any, model: Any, args: argparse.Namespace, use_maps: bool, steps: int) -> Any:
    """Compiles for the joint phase; returns the learning-rate schedule (its horizon can move)."""
    # Cosine decay over the planned epochs rather than cuts on a validation plateau: on small
    # defects the validation loss wanders near the class prior for many epochs, and plateau
    # cuts there (seen here: twice before epoch 22) starve the phase where learning happens.
    if args.time_budget is None:
        schedule = keras.optimizers.schedules.CosineDecay(args.lr, decay_steps=steps, alpha=0.05)
    else:  # the same curve, with a horizon the budget can move
        schedule = adjustable_cosine(args.lr, total_steps=steps, alpha=0.05)
    if use_maps:
        model.compile(
            optimizer=keras.optimizers.Adam(schedule),
            loss={
                "probabilities": "sparse_categorical_crossentropy",
                "defect_map": _map_loss(args.map_pos_weight),
            },
            loss_weights={"probabilities": 1.0, "defect_map": args.map_weight},
            metrics={"probabilities": ["accuracy"]},
        )
    else:
        model.compile(
            optimizer=keras.optimizers.Adam(schedule),
            loss="sparse_categorical_crossentropy",
            metrics=["accuracy"],
        )
    return schedule


def _pretrain_map(
    keras: Any,
    model: Any,
    args: argparse.Namespace,
    data: Any,
    calibration: np.ndarray,
    clock: EpochClock | None,
) -> None:
    """Segmentation first, then the decision (Tabernik et al., 2019): the map alone learns where
    defects are; the classifier, which reads the map's peak, then starts from a useful signal."""
    from tools.batchnorm import recalibrate_batchnorm

    log.info("defect map first: %d epoch(s) with the classification loss off", args.map_epochs)
    model.compile(
        optimizer=keras.optimizers.Adam(args.lr),
        loss={
            "probabilities": "sparse_categorical_crossentropy",
            "defect_map": _map_loss(args.map_pos_weight),
        },
        loss_weights={"probabilities": 0.0, "defect_map": 1.0},
    )
    callbacks = [tqdm_epochs(args.map_epochs)]
    if clock is not None:
        callbacks.insert(0, budget_callback(clock, steps_per_epoch=1))  # constant learning rate here
    model.fit(data, epochs=args.map_epochs, callbacks=callbacks, verbose=0)
    recalibrate_batchnorm(model, calibration)


def _map_loss(pos_weight: float) -> Any:
    """Binary cross-entropy with defect cells weighted ``pos_weight`` times: ~1 % of cells are defect."""
    import keras

    def weighted_bce(target: Any, predicted: Any) -> Any:
        p = keras.ops.clip(predicted, 1e-6, 1.0 - 1e-6)
        loss = -(pos_weight * target * keras.ops.log(p) + (1.0 - target) * keras.ops.log(1.0 - p))
        return keras.ops.mean(loss, axis=-1)

    return weighted_bce


def _use_defect_maps(args: argparse.Namespace, data: LabelledImages) -> bool:
    masks = int(data.summary().get("defect_masks", 0))  # type: ignore[call-overload]
    if args.defect_maps == "on" and masks == 0:
        raise InspectError(
            f"--defect-maps on, but no defect masks found beside {args.data} "
            "(expected masks/<label>/<image name> or ground_truth/<label>/<stem>_mask.png)",
            ExitStatus.DATA_ERROR,
        )
    return args.defect_maps != "off" and masks > 0


def _plain_history(history: dict[str, list[float]]) -> dict[str, list[float]]:
    """Two-output runs log 'probabilities_accuracy'; name it 'accuracy' as single-output runs do."""
    renamed = {}
    for key, values in history.items():
        for prefix in ("", "val_"):
            if key == f"{prefix}probabilities_accuracy":
                key = f"{prefix}accuracy"
        renamed[key] = values
    return renamed


def _callbacks(
    keras: Any, checkpoint: Path, args: argparse.Namespace, calibration: np.ndarray, monitor: str
) -> list[Any]:
    from tools.batchnorm import recalibration_callback

    return [
        recalibration_callback(calibration),  # before the checkpoint, so the saved model has exact statistics
        keras.callbacks.ModelCheckpoint(
            str(checkpoint), monitor=monitor, mode="min", save_best_only=True, save_weights_only=True
        ),
        # Small defects on varied parts leave the loss flat at the class prior for the first
        # epochs (seen here: 10+ epochs on 2,000 synthetic images); stopping during that
        # plateau would end training before it starts.
        keras.callbacks.EarlyStopping(
            monitor=monitor,
            mode="min",
            patience=args.patience,
            start_from_epoch=min(args.min_epochs, args.epochs),
        ),
        tqdm_epochs(args.epochs),
    ]
