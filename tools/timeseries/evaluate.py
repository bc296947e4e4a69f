"""``inspect-model evaluate --task timeseries``: window and span metrics, size and speed per model variant.

    inspect-model evaluate --task timeseries --data data/sensors-holdout \\
        --model runs/sensors/model.keras --model models/sensors/sensors_int8.tflite --out reports/sensors

For each model: accuracy, precision, recall, F1, ROC-AUC and the confusion matrix of its windows at the
card's threshold; the threshold that keeps ``--target-recall``; span precision/recall (flagged windows
merged into detections, compared with the labelled spans); part quality (a produced part in ``parts.csv`` is
predicted NG when a detection overlaps it); file size and time per inference. Writes
``evaluation.json``, ``roc.png``, ``confusion_<model>.png`` and ``signals_<model>.png`` (the first
``--plot-seconds`` of the signals with labelled vs detected spans).
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from agent.model import TFLiteModel
from agent.modelcard import card_path_for, load_series_card
from agent.status import ExitStatus, InspectError
from tools._cli_util import ensure_output_dir, require_file
from tools.metrics import threshold_for_recall
from tools.report import dump_json
from tools.timeseries.convert import window_scores
from tools.timeseries.metrics import binary_metrics, part_metrics, span_metrics
from tools.timeseries.synth import read_parts, read_series, read_spans
from tools.timeseries.train import training_record
from tools.timeseries.windows import Standardizer, make_windows

__all__ = ["add_arguments", "detections", "run"]

_WARMUP = 5


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", type=Path, required=True, help="held-out synth folder (series.csv + spans.csv)")
    p.add_argument(
        "--model", type=Path, action="append", required=True, help=".keras or .tflite (card beside); repeat"
    )
    p.add_argument("--out", type=Path, required=True, help="report folder")
    p.add_argument(
        "--target-recall", type=float, default=0.8, help="window recall the reported threshold keeps"
    )
    p.add_argument("--latency-runs", type=int, default=200, help="timed single-window invokes (TFLite)")
    p.add_argument("--plot-seconds", type=float, default=900.0, help="seconds of signal in the signals plot")


@dataclass
class _Loaded:
    name: str
    kind: str
    quantization: str
    series: dict[str, Any]
    threshold: float
    size_bytes: int
    scores: Any  # (W, length, C) -> (W,)
    tflite: TFLiteModel | None = None


def _load(path: Path) -> _Loaded:
    require_file(path, "model")
    if path.suffix == ".tflite":
        card = load_series_card(card_path_for(path))
        card.verify_file(path)
        model = TFLiteModel(path, num_threads=1)
        card.verify_tensors(model.inputs, model.outputs)
        series = card.input.model_dump(
            include={"channels", "sample_rate_hz", "window", "stride", "horizon", "mean", "std"}
        )
        return _Loaded(
            path.name,
            "tflite",
            card.quantization,
            series,
            card.thresholds.defect,
            path.stat().st_size,
            lambda x: window_scores(model, x),
            model,
        )
    record = training_record(path.parent / "training.json")
    from tools.tf_util import import_tensorflow

    import_tensorflow()
    import keras

    keras_model = keras.models.load_model(str(path), compile=False)
    return _Loaded(
        path.name,
        "keras",
        "float32",
        record["series"],
        float(record["thresholds"]["defect"]),
        path.stat().st_size,
        lambda x: keras_model.predict(x, batch_size=256, verbose=0).reshape(-1),
    )


def detections(
    flagged: np.ndarray, ends: np.ndarray, t: np.ndarray, length: int
) -> list[tuple[float, float]]:
    """Flagged windows -> merged [start, end) intervals (a window covers ``t[end-length] .. t[end-1]``)."""
    step = float(t[1] - t[0]) if len(t) > 1 else 0.0
    merged: list[tuple[float, float]] = []
    for end in ends[flagged]:
        start, stop = float(t[end - length]), float(t[end - 1]) + step
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], stop))
        else:
            merged.append((start, stop))
    return merged


def run(args: argparse.Namespace) -> int:
    out = ensure_output_dir(args.out)
    channels, t, values, anomaly = read_series(args.data)
    spans = [(s.start, s.end) for s in read_spans(args.data)]
    parts = read_parts(args.data)
    results = []
    roc: dict[str, tuple[np.ndarray, np.ndarray, float | None]] = {}
    from sklearn.metrics import roc_curve

    from tools.plots import plot_confusion, plot_roc
    from tools.timeseries.plots import plot_signals

    for path in args.model:
        model = _load(path)
        s = model.series
        if s["channels"] != channels:
            raise InspectError(
                f"{path} expects channels {s['channels']}, {args.data} has {channels}", ExitStatus.DATA_ERROR
            )
        scaler = Standardizer(np.asarray(s["mean"], np.float32), np.asarray(s["std"], np.float32))
        windows = make_windows(scaler.apply(values), anomaly, s["window"], s["stride"], s["horizon"])
        if len(windows) == 0:
            raise InspectError(f"{args.data} is shorter than one window of {path}", ExitStatus.DATA_ERROR)
        scores = np.asarray(model.scores(windows.x), dtype=np.float64)
        choice = threshold_for_recall(windows.y.astype(bool), scores, args.target_recall)
        found = detections(scores > model.threshold, windows.ends, t, s["window"])
        metrics = binary_metrics(windows.y, scores, model.threshold)
        result: dict[str, Any] = {
            "name": model.name,
            "path": str(path),
            "kind": model.kind,
            "quantization": model.quantization,
            "size_bytes": model.size_bytes,
            "metrics": metrics,
            "threshold_for_target_recall": choice.as_dict(),
            "metrics_at_target_threshold": binary_metrics(windows.y, scores, choice.threshold),
            "spans": span_metrics(found, spans),
            "parts": part_metrics(found, parts),
            "latency_ms": _latency(model.tflite, windows.x[0], args.latency_runs) if model.tflite else None,
        }
        results.append(result)
        fpr, tpr, _ = roc_curve(windows.y, scores) if windows.y.any() else (np.zeros(1), np.zeros(1), None)
        roc[model.name] = (fpr, tpr, metrics["roc_auc"])
        slug = "".join(c if c.isalnum() else "_" for c in model.name)
        plot_confusion(
            metrics["confusion_matrix"],
            ["normal", "anomaly"],
            model.name,
            out / f"confusion_{slug}.png",
        )
        shown = t < t[0] + args.plot_seconds
        plot_signals(
            t[shown],
            values[shown],
            channels,
            _clipped(spans, float(t[shown][-1])),
            _clipped(found, float(t[shown][-1])),
            out / f"signals_{slug}.png",
            model.name,
        )
    plot_roc(roc, out / "roc.png")
    dump_json(
        {"data": str(args.data), "target_recall": args.target_recall, "models": results},
        out / "evaluation.json",
    )
    _print_table(results)
    print(f"wrote {out / 'evaluation.json'} and plots in {out}")
    return int(ExitStatus.OK)


def _clipped(intervals: list[tuple[float, float]], end: float) -> list[tuple[float, float]]:
    return [(start, min(stop, end)) for start, stop in intervals if start < end]


def _latency(model: TFLiteModel, window: np.ndarray, runs: int) -> dict[str, float]:
    tensor = window[None].astype(np.float32)
    samples = []
    for i in range(_WARMUP + runs):
        start = time.perf_counter()
        model.run(tensor)
        if i >= _WARMUP:
            samples.append((time.perf_counter() - start) * 1000.0)
    return {"p50": float(np.percentile(samples, 50)), "p90": float(np.percentile(samples, 90)), "runs": runs}


def _print_table(results: list[dict[str, Any]]) -> None:
    print(
        f"{'model':<28} {'bytes':>9} {'acc':>6} {'P':>6} {'R':>6} {'F1':>6} {'AUC':>6} "
        f"{'spanP':>6} {'spanR':>6} {'partF1':>6} {'ms':>6}"
    )
    for r in results:
        m, sp, lat, parts = r["metrics"], r["spans"], r["latency_ms"], r["parts"]
        auc = f"{m['roc_auc']:.4f}" if m["roc_auc"] is not None else "n/a"
        ms = f"{lat['p50']:.3f}" if lat else "n/a"
        part_f1 = f"{parts['f1']:.3f}" if parts else "n/a"
        print(
            f"{r['name']:<28} {r['size_bytes']:>9} {m['accuracy']:>6.4f} {m['precision']:>6.3f} "
            f"{m['recall']:>6.3f} {m['f1']:>6.3f} {auc:>6} {sp['precision']:>6.3f} {sp['recall']:>6.3f} "
            f"{part_f1:>6} {ms:>6}"
        )
