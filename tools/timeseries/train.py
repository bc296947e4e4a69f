"""``inspect-model train --task timeseries``: a CNN-LSTM (or CNN) anomaly model on a sensor recording.

    inspect-model train --task timeseries --data data/sensors --out runs/sensors --window 64 --stride 8

Reads ``series.csv`` (from ``synth --task timeseries`` or any CSV with a ``t`` column, the channels and
an ``anomaly`` 0/1 column). Splits by time (training first, validation last, a gap between: no window
or label is shared), fits the standardisation on the training part only, trains with class weights and
early stopping on validation loss, keeps the best epoch. Writes ``model.keras``, ``training.json``
(standardisation, window, threshold for ``--target-recall``, validation metrics) and ``curves.png``.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from agent.modelcard import file_sha256
from agent.status import ExitStatus, InspectError
from tools._cli_util import ensure_output_dir
from tools.metrics import threshold_for_recall
from tools.tf_util import import_tensorflow, tool_versions, tqdm_epochs
from tools.timeseries.metrics import binary_metrics
from tools.timeseries.model import ARCHITECTURES, build_model
from tools.timeseries.synth import read_series
from tools.timeseries.windows import Standardizer, make_windows, time_split
from tools.train import TRAINING_JSON
from tools.train_data import class_weights

__all__ = ["add_arguments", "run"]

log = logging.getLogger(__name__)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", type=Path, required=True, help="synth folder or a series CSV")
    p.add_argument(
        "--out", type=Path, required=True, help="run folder for model.keras, training.json, curves.png"
    )
    p.add_argument("--arch", choices=ARCHITECTURES, default="cnn-lstm", help="model architecture")
    p.add_argument("--window", type=int, default=64, help="window length in samples")
    p.add_argument(
        "--stride", type=int, default=8, help="samples between windows (the device infers this often)"
    )
    p.add_argument(
        "--horizon", type=int, default=0, help="also flag anomalies starting this many samples ahead"
    )
    p.add_argument(
        "--train-stride", type=int, default=2, help="samples between training windows (more = fewer)"
    )
    p.add_argument("--width", type=int, default=16, help="filters of the first convolution")
    p.add_argument("--epochs", type=int, default=40)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate")
    p.add_argument(
        "--patience", type=int, default=8, help="early stopping: epochs without val_loss improvement"
    )
    p.add_argument(
        "--val-fraction", type=float, default=0.25, help="the last part of the recording validates"
    )
    p.add_argument(
        "--target-recall", type=float, default=0.8, help="window recall the calibrated threshold keeps"
    )
    p.add_argument("--no-class-weights", action="store_true", help="do not reweight anomalous windows")


def run(args: argparse.Namespace) -> int:
    started = time.monotonic()
    out = ensure_output_dir(args.out)
    channels, t, values, anomaly = read_series(args.data)
    rate_hz = _rate(t)
    train_part, val_part = time_split(len(values), args.val_fraction, args.window, args.horizon)
    scaler = Standardizer.fit(values[train_part])
    scaled = scaler.apply(values)
    train = make_windows(
        scaled[train_part], anomaly[train_part], args.window, args.train_stride, args.horizon
    )
    val = make_windows(scaled[val_part], anomaly[val_part], args.window, args.stride, args.horizon)
    for name, windows in (("training", train), ("validation", val)):
        if len(windows) == 0 or windows.y.min() == windows.y.max():
            raise InspectError(
                f"the {name} part has {len(windows)} windows and {int(windows.y.sum())} anomalous: need both "
                "classes (a longer recording, or a different --val-fraction)",
                ExitStatus.DATA_ERROR,
            )
    import_tensorflow()
    import keras

    keras.utils.set_random_seed(args.seed)
    model = build_model(args.arch, args.window, len(channels), args.width)
    model.compile(
        optimizer=keras.optimizers.Adam(args.lr),
        loss="binary_crossentropy",
        metrics=["accuracy", keras.metrics.AUC(name="auc")],
    )
    weights = None if args.no_class_weights else class_weights(train.y, 2)
    log.info(
        "model %s: %d parameters; %d training / %d validation windows",
        args.arch,
        model.count_params(),
        len(train),
        len(val),
    )
    checkpoint = out / ".best.weights.h5"
    history = model.fit(
        train.x,
        train.y.astype(np.float32),
        validation_data=(val.x, val.y.astype(np.float32)),
        epochs=args.epochs,
        batch_size=args.batch_size,
        class_weight=weights,
        callbacks=[
            keras.callbacks.ModelCheckpoint(
                str(checkpoint), monitor="val_loss", save_best_only=True, save_weights_only=True
            ),
            keras.callbacks.EarlyStopping(monitor="val_loss", patience=args.patience),
            tqdm_epochs(args.epochs),
        ],
        verbose=0,
    ).history
    model.load_weights(checkpoint)
    checkpoint.unlink()
    model.save(out / "model.keras")
    scores = model.predict(val.x, batch_size=256, verbose=0).reshape(-1)
    choice = threshold_for_recall(val.y.astype(bool), scores, args.target_recall)
    history = {k: [float(v) for v in vals] for k, vals in history.items()}
    best_epoch = int(np.argmin(history["val_loss"])) + 1
    record = {
        "task": "timeseries",
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items() if k != "func"},
        "labels": ["normal", "anomaly"],
        "good_label": "normal",
        "architecture": args.arch,
        "series": {
            "channels": channels,
            "sample_rate_hz": rate_hz,
            "window": args.window,
            "stride": args.stride,
            "horizon": args.horizon,
            "mean": [float(v) for v in scaler.mean],
            "std": [float(v) for v in scaler.std],
        },
        "parameters": int(model.count_params()),
        "data": {
            "source": str(args.data),
            "samples": len(values),
            "train_samples": [train_part.start, train_part.stop],
            "validation_samples": [val_part.start, val_part.stop],
            "train_windows": len(train),
            "train_anomalous": int(train.y.sum()),
            "validation_windows": len(val),
            "validation_anomalous": int(val.y.sum()),
        },
        "class_weights": weights,
        "history": history,
        "best_epoch": best_epoch,
        "epochs_run": len(history["val_loss"]),
        "validation": binary_metrics(val.y, scores, choice.threshold),
        "thresholds": {
            "defect": choice.threshold,
            "target_recall": args.target_recall,
            "source": f"validation part, {len(val)} windows",
        },
        "model_sha256": file_sha256(out / "model.keras"),
        "tools": tool_versions(),
        "seconds": round(time.monotonic() - started, 1),
    }
    (out / TRAINING_JSON).write_text(json.dumps(record, indent=2) + "\n")
    from tools.plots import plot_curves

    plot_curves(history, out / "curves.png", best_epoch)
    v = record["validation"]
    print(
        f"trained {record['epochs_run']} epochs in {record['seconds']} s; best epoch {best_epoch}: "
        f"val ROC-AUC {v['roc_auc']}, threshold {choice.threshold:.4f} -> recall {v['recall']:.4f} "
        f"precision {v['precision']:.4f} F1 {v['f1']:.4f}\nwrote {out / 'model.keras'}, {out / TRAINING_JSON}"
    )
    return int(ExitStatus.OK)


def _rate(t: np.ndarray) -> float:
    """The recording's sample rate from its median time step; refuses an unevenly sampled file."""
    steps = np.diff(t)
    if len(steps) == 0 or np.median(steps) <= 0:
        raise InspectError("the series needs at least two samples with increasing t", ExitStatus.DATA_ERROR)
    step = float(np.median(steps))
    if np.mean(np.abs(steps - step) > 0.01 * step) > 0.01:
        raise InspectError(
            f"the series is not evenly sampled (median step {step:g} s); resample it first",
            ExitStatus.DATA_ERROR,
        )
    return round(1.0 / step, 6)


def training_record(path: Path) -> dict[str, Any]:
    """``training.json`` of a time-series run, or one clear error."""
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise InspectError(f"cannot read training record {path}: {exc}", ExitStatus.NO_INPUT) from exc
    if record.get("task") != "timeseries" or "series" not in record:
        raise InspectError(f"{path} is not a time-series training record", ExitStatus.DATA_ERROR)
    return dict(record)
