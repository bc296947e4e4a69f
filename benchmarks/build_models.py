"""Models for the model-size and dtype sweeps, built with our own toolchain (synth -> train -> convert).

    python benchmarks/build_models.py --out out/bench/models

Trains the same architecture briefly (speed does not depend on how well a model is trained) at input
160, 128 and 96 px (width 1.0) and at 160 px width 0.5, and converts each to float32, float16 and int8
(uint8 I/O) with cards, so that ``inspect-agent bench`` (invoke ceilings) and ``inspect-agent
bench-pipeline`` (the whole agent) can compare them. Needs the workstation extra (TensorFlow).
Accuracy figures for the real demo model are in docs/model-report.md; these are for timing only.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

SIZES = (("s160", 160, 1.0), ("s128", 128, 1.0), ("s96", 96, 1.0), ("s160w05", 160, 0.5))


def _tool(*args: str) -> None:
    print("inspect-model", " ".join(args), flush=True)
    subprocess.run([sys.executable, "-m", "tools.cli", *args], check=True)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=Path("out/bench/models"), help="output folder")
    parser.add_argument("--count", type=int, default=300, help="synthetic training images")
    parser.add_argument("--epochs", type=int, default=2, help="training epochs per model")
    args = parser.parse_args()
    data = args.out / "data"
    if not data.is_dir():
        _tool("synth", "--out", str(data), "--count", str(args.count), "--size", "192", "--seed", "7")
    for name, size, width in SIZES:
        run = args.out / f"run-{name}"
        if not (run / "model.keras").is_file():
            size_args = ["--input-size", str(size), "--width", str(width)]
            epochs = ["--epochs", str(args.epochs), "--min-epochs", "1", "--map-epochs", "1"]
            _tool("train", "--data", str(data), "--out", str(run), *size_args, *epochs)
        _tool("convert", "--model", str(run / "model.keras"), "--out", str(args.out), "--name", name,
              "--variants", "float32,float16,int8", "--min-agreement", "0")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
