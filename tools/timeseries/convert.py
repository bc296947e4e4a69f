"""``inspect-model convert --task timeseries``: a sensor model to TFLite float32, dynamic-range and int8.

    inspect-model convert --task timeseries --model runs/sensors/model.keras --out models/sensors

Each variant is converted in its own process (an LSTM can crash the converter), loaded back in the
device's interpreter and compared with the Keras model on ``--rep-samples`` windows of the recording:
decision agreement at the calibrated threshold, and score differences. The card of every variant says
whether it is ``recommended``: the smallest file among the variants whose agreement reaches
``--min-agreement`` (the better agreement on a tie). Size is measured, not assumed: an unrolled LSTM
in full int8 can be larger than its dynamic-range twin. Exit 3 when no variant holds up.
"""

from __future__ import annotations

import argparse
import logging
import os
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from agent.model import TFLiteModel
from agent.modelcard import (
    SeriesInputSpec,
    SeriesModelCard,
    Thresholds,
    card_path_for,
    file_sha256,
    save_card,
)
from agent.status import ExitStatus, InspectError
from tools._cli_util import add_tflite_output_arguments, ensure_output_dir, require_file
from tools.tf_util import import_tensorflow, tool_versions
from tools.timeseries.synth import read_series
from tools.timeseries.train import training_record
from tools.timeseries.windows import Standardizer, make_windows

__all__ = ["VARIANTS", "SeriesVerification", "add_arguments", "run", "series_input", "window_scores"]

log = logging.getLogger(__name__)

VARIANTS = ("float32", "dynamic", "int8")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", type=Path, required=True, help="model.keras from train --task timeseries")
    add_tflite_output_arguments(p, VARIANTS)
    p.add_argument(
        "--rep-data", type=Path, help="recording for calibration and checks (default: the training data)"
    )
    p.add_argument(
        "--rep-samples", type=int, default=300, help="windows drawn (seeded) for calibration and checks"
    )
    p.add_argument("--min-agreement", type=float, default=0.98, help="least decision agreement with Keras")


@dataclass(frozen=True)
class SeriesVerification:
    windows: int
    decision_agreement: float  # same side of the threshold as the Keras model
    max_abs_diff: float
    mean_abs_diff: float
    min_agreement: float

    @property
    def passed(self) -> bool:
        return self.decision_agreement >= self.min_agreement


def run(args: argparse.Namespace) -> int:
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    if not variants or set(variants) - set(VARIANTS):
        raise InspectError(
            f"--variants: choose from {', '.join(VARIANTS)}, got {args.variants!r}", ExitStatus.USAGE
        )
    require_file(args.model, "model")
    record = training_record(args.model.parent / "training.json")
    out = ensure_output_dir(args.out)
    name = args.name or (args.model.parent.name if args.model.stem == "model" else args.model.stem)
    series = record["series"]
    rep = _representative(
        args.rep_data or Path(record["data"]["source"]), series, args.rep_samples, args.seed
    )
    import_tensorflow()
    import keras

    try:
        source = keras.models.load_model(str(args.model), compile=False)
    except Exception as exc:  # Keras raises many types for a damaged file
        reason = str(exc).strip()[:200] or type(exc).__name__
        raise InspectError(f"cannot read model {args.model}: {reason}", ExitStatus.DATA_ERROR) from exc
    reference = source.predict(rep, verbose=0).reshape(-1)
    threshold = float(record["thresholds"]["defect"])
    results: dict[str, tuple[Path, SeriesVerification, TFLiteModel]] = {}
    print(f"{'variant':<8} {'bytes':>9} {'agree':>7} {'max |diff|':>10} {'mean |diff|':>11}  file")
    with tempfile.TemporaryDirectory() as tmp:
        rep_path = Path(tmp) / "rep.npy"
        np.save(rep_path, rep)
        for variant in variants:
            path = out / f"{name}_{variant}.tflite"
            _convert_in_subprocess(args.model, record["architecture"], variant, path, rep_path)
            model = TFLiteModel(path, num_threads=1)
            scores = window_scores(model, rep)
            diff = np.abs(scores - reference)
            same = (scores > threshold) == (reference > threshold)
            check = SeriesVerification(
                len(rep), float(same.mean()), float(diff.max()), float(diff.mean()), args.min_agreement
            )
            results[variant] = (path, check, model)
            print(
                f"{variant:<8} {path.stat().st_size:>9} {check.decision_agreement:>7.4f} "
                f"{check.max_abs_diff:>10.4f} {check.mean_abs_diff:>11.5f}  {path}"
            )
    passed = [v for v in results if results[v][1].passed]
    recommended = min(
        passed, key=lambda v: (results[v][0].stat().st_size, -results[v][1].decision_agreement), default=None
    )
    for variant, (path, check, model) in results.items():
        card = _card(name, args, record, variant, path, model, check, variant == recommended)
        save_card(card, card_path_for(path))
    print(f"recommended: {recommended or 'none (no variant reached --min-agreement)'}")
    if recommended is None:
        raise InspectError(
            f"no variant reached --min-agreement {args.min_agreement}: see verification in the cards",
            ExitStatus.CHECK_FAILED,
        )
    return int(ExitStatus.OK)


def _representative(source: Path, series: dict[str, Any], count: int, seed: int) -> np.ndarray:
    """``count`` standardised windows drawn (seeded) from the whole recording, anomalous ones included."""
    channels, _t, values, anomaly = read_series(source)
    if channels != series["channels"]:
        raise InspectError(
            f"{source} has channels {channels}, the model {series['channels']}", ExitStatus.DATA_ERROR
        )
    scaler = Standardizer(np.asarray(series["mean"], np.float32), np.asarray(series["std"], np.float32))
    windows = make_windows(
        scaler.apply(values), anomaly, series["window"], series["stride"], series["horizon"]
    )
    if len(windows) == 0:
        raise InspectError(f"{source} is shorter than one window", ExitStatus.DATA_ERROR)
    pick = np.random.default_rng(seed).choice(len(windows), size=min(count, len(windows)), replace=False)
    return windows.x[np.sort(pick)]


def _convert_in_subprocess(model: Path, architecture: str, variant: str, out: Path, rep: Path) -> None:
    command = [
        sys.executable,
        "-m",
        "tools.timeseries.convert_worker",
        str(model),
        architecture,
        variant,
        str(out),
        str(rep),
    ]
    done = subprocess.run(command, capture_output=True, text=True, env=os.environ.copy(), check=False)
    if done.returncode != 0:
        how = f"crashed (signal {-done.returncode})" if done.returncode < 0 else "failed"
        reason = (done.stderr.strip().splitlines() or ["no message"])[0]
        log.debug("converter output for %s:\n%s", variant, done.stderr)
        raise InspectError(
            f"TFLite converter {how} for the {variant} variant: {reason}", ExitStatus.DATA_ERROR
        )


def window_scores(model: TFLiteModel, windows: np.ndarray) -> np.ndarray:
    """(W, length, C) standardised windows -> (W,) anomaly scores, one invoke per window (batch 1)."""
    return np.array([float(model.run(w[None].astype(np.float32))[0].reshape(-1)[0]) for w in windows])


def series_input(series: dict[str, Any], model: TFLiteModel) -> SeriesInputSpec:
    tensor = model.inputs[0]
    return SeriesInputSpec(
        name=tensor.name,
        shape=tensor.shape,
        dtype=tensor.dtype,
        quantization=tensor.quantization,
        channels=series["channels"],
        sample_rate_hz=series["sample_rate_hz"],
        window=series["window"],
        stride=series["stride"],
        horizon=series["horizon"],
        mean=series["mean"],
        std=series["std"],
    )


def _card(
    name: str,
    args: argparse.Namespace,
    record: dict[str, Any],
    variant: str,
    path: Path,
    model: TFLiteModel,
    check: SeriesVerification,
    recommended: bool,
) -> SeriesModelCard:
    thresholds = record["thresholds"]
    return SeriesModelCard(
        name=name,
        version=args.model_version,
        labels=record["labels"],
        good_label=record["good_label"],
        quantization=variant,  # type: ignore[arg-type]
        input=series_input(record["series"], model),
        outputs=model.outputs,
        thresholds=Thresholds(
            defect=thresholds["defect"],
            target_recall=thresholds.get("target_recall"),
            source=thresholds.get("source", "default"),
        ),
        metrics={
            "validation_source_model": record.get("validation", {}),
            "verification": {**asdict(check), "passed": check.passed, "interpreter": model.backend},
        },
        training={
            "architecture": record["architecture"],
            "data": record.get("data", {}),
            "epochs_run": record.get("epochs_run"),
        },
        source_model={"path": str(args.model), "format": "keras", "sha256": file_sha256(args.model)},
        tflite_file=path.name,
        tflite_sha256=file_sha256(path),
        tflite_bytes=path.stat().st_size,
        tools=tool_versions(),
        created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        recommended=recommended,
    )
