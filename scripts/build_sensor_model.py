"""Rebuild the bundled sensor model in models/sensors/ with our own tools.

    python scripts/build_sensor_model.py --out out/sensor-model --models models/sensors

synth (a 4 h training recording and a 30 min held-out one, different seeds) -> train (CNN-LSTM,
time-ordered split) -> convert to float32, dynamic-range and int8, each checked against Keras ->
evaluate all variants on the held-out recording -> copy every variant's bundle, ``evaluation.json``
and the plots into --models. The card of each variant says whether it is ``recommended``.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from tools.cli import run_step as _step

VARIANTS = ("float32", "dynamic", "int8")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add = parser.add_argument
    add("--out", type=Path, default=Path("out/sensor-model"), help="working folder (default: %(default)s)")
    add("--models", type=Path, default=Path("models/sensors"), help="bundle folder (default: %(default)s)")
    add("--train-seconds", type=float, default=14400, help="training recording (default: %(default)s)")
    add("--test-seconds", type=float, default=1800, help="held-out recording (default: %(default)s)")
    add("--epochs", type=int, default=40, help="most epochs (early stopping) (default: %(default)s)")
    args = parser.parse_args()
    out: Path = args.out
    task = ["--task", "timeseries"]
    _step(
        "training recording",
        ["synth", *task, "--out", str(out / "train"), "--duration", str(args.train_seconds), "--seed", "100"],
    )
    _step(
        "held-out recording",
        ["synth", *task, "--out", str(out / "test"), "--duration", str(args.test_seconds), "--seed", "200"],
    )
    _step(
        "train",
        [
            "train",
            *task,
            "--data",
            str(out / "train"),
            "--out",
            str(out / "run"),
            "--epochs",
            str(args.epochs),
            "--train-stride",
            "4",
        ],
    )
    _step(
        "convert",
        [
            "convert",
            *task,
            "--model",
            str(out / "run/model.keras"),
            "--out",
            str(out / "models"),
            "--name",
            "sensors",
        ],
    )
    models = [str(out / "models" / f"sensors_{v}.tflite") for v in VARIANTS]
    evaluate = ["evaluate", *task, "--data", str(out / "test"), "--out", str(out / "report")]
    _step("evaluate", [*evaluate, "--model", str(out / "run/model.keras"), *(f"--model={m}" for m in models)])
    args.models.mkdir(parents=True, exist_ok=True)
    for variant in VARIANTS:
        for suffix in (".tflite", ".json"):
            shutil.copy2(out / "models" / f"sensors_{variant}{suffix}", args.models)
    for name in ("evaluation.json", "roc.png", "signals_sensors_dynamic_tflite.png"):
        shutil.copy2(out / "report" / name, args.models / name)
    print(f"bundled {', '.join(VARIANTS)} in {args.models}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
