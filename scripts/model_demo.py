"""The toolchain end to end on synthetic data: synth -> train -> convert -> evaluate.

    python scripts/model_demo.py --out out/demo            # what `make demo` runs (~3 min on 2 cores)
    python scripts/model_demo.py --out out/model-report --train-count 2000 --test-count 1000 --epochs 40

Training and held-out sets come from different seeds, so the evaluation is on
parts the model never saw. Ends with the figures that docs/model-report.md quotes.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from tools.cli import run_step as _step


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=Path("out/demo"))
    parser.add_argument("--train-count", type=int, default=1200)
    parser.add_argument("--test-count", type=int, default=600)
    parser.add_argument("--epochs", type=int, default=25)
    parser.add_argument("--input-size", type=int, default=128)
    args = parser.parse_args()
    out: Path = args.out
    size = str(args.input_size)
    _step(
        "synthesise training set",
        ["synth", "--out", str(out / "data/train"), "--count", str(args.train_count), "--seed", "0"],
    )
    _step(
        "synthesise held-out set",
        ["synth", "--out", str(out / "data/test"), "--count", str(args.test_count), "--seed", "1"],
    )
    _step(
        "train",
        [
            "train",
            "--data",
            str(out / "data/train"),
            "--out",
            str(out / "run"),
            "--epochs",
            str(args.epochs),
            "--input-size",
            size,
        ],
    )
    _step(
        "convert",
        ["convert", "--model", str(out / "run/model.keras"), "--out", str(out / "models"), "--name", "parts"],
    )
    variants = [str(out / "run/model.keras")] + [
        str(out / f"models/parts_{v}.tflite") for v in ("float32", "float16", "dynamic", "int8")
    ]
    evaluate = ["evaluate", "--data", str(out / "data/test"), "--out", str(out / "report")]
    for path in variants:
        evaluate += ["--model", path]
    _step("evaluate on the held-out set", evaluate)
    report = json.loads((out / "report/report.json").read_text())
    by_quant = {v["quantization"]: v for v in report["variants"] if v["kind"] == "tflite"}
    f32, i8 = by_quant["float32"], by_quant["int8"]
    acc32, acc8 = 100 * f32["metrics"]["accuracy"], 100 * i8["metrics"]["accuracy"]
    size_ratio = i8["size_bytes"] / f32["size_bytes"]
    target = i8["threshold_for_target_recall"]
    print(
        "\nTargets on the held-out set:\n"
        f"  int8 accuracy {acc8:.2f}% vs float32 {acc32:.2f}% "
        f"(delta {acc8 - acc32:+.2f} points; target within 1)\n"
        f"  int8 size {i8['size_bytes']:,} B = {size_ratio:.1%} of float32 (target <= 30%)\n"
        f"  int8 defect recall {target['recall']:.3f} at precision {target['precision']:.3f} "
        f"(threshold {target['threshold']:.3f}; target recall >= 0.98 at precision >= 0.95)\n"
        f"Report: {out / 'report/report.html'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
