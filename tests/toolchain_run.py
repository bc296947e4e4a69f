"""The toolchain run several test modules share: synth -> train -> convert (all variants) -> evaluate.

Session-scoped, so the ~1 minute of training happens once per test session, whichever
module needs it first (tests/test_toolchain.py, tests/test_heatmap_model.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from tools.cli import main
from tools.convert import VARIANTS
from tools.synth import generate_images

__all__ = ["INPUT_SIZE", "Run", "toolchain"]

INPUT_SIZE = 64


@dataclass
class Run:
    data: Path
    run: Path
    models: Path
    report: Path
    train_stdout: str


@pytest.fixture(scope="session")
def toolchain(tmp_path_factory: pytest.TempPathFactory) -> Run:
    root = tmp_path_factory.mktemp("toolchain")
    data = root / "data"
    generate_images(data, count=240, seed=3, size=128, defect_ratio=0.5, kinds=("scratch", "spot", "crack"))
    # Junk a real folder has: an unreadable "image" and a note; both are skipped and counted.
    (data / "good" / "corrupt.png").write_bytes(b"not a png at all")
    (data / "good" / "notes.txt").write_text("shift B, lamp replaced")
    run, models, report = root / "run", root / "models", root / "report"
    # Validation on the training images themselves, without augmentation: a few epochs on
    # 240 hard synthetic images cannot generalise, but they can be learnt, and a model that
    # is confident about them is what the agreement and pipeline checks below need.
    train = ["train", "--data", str(data), "--val-data", str(data), "--out", str(run), "--no-augment"]
    assert main([*train, "--input-size", str(INPUT_SIZE), "--epochs", "8", "--batch-size", "16"]) == 0
    assert (
        main(["convert", "--model", str(run / "model.keras"), "--out", str(models), "--name", "parts"]) == 0
    )
    argv = ["evaluate", "--data", str(data), "--out", str(report), "--latency-runs", "5", "--write-threshold"]
    argv += ["--model", str(run / "model.keras")]
    argv += [arg for v in VARIANTS for arg in ("--model", str(models / f"parts_{v}.tflite"))]
    assert main(argv) == 0
    return Run(data, run, models, report, "")
