"""Rebuild the bundled demo model in models/demo/ with our own tools (what `make demo-model` runs).

    python scripts/build_demo_model.py --out out/demo-model --models models/demo

synth (training and held-out sets from different seeds, plus extra chip and scratch images from their own
seeds) -> train
(defect map first, then the classifier) -> convert to float32 and int8 -> evaluate both on the held-out
set -> copy the int8 bundle (``parts_int8.tflite`` + ``parts_int8.json``) and the evaluation figures into
--models.
The threshold is then calibrated on four generated line videos (the agent's own presence trigger
and crops, matched to the ground truth) for 0.8 defect recall and written into the card.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

from tools.cli import run_step as _step


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add = parser.add_argument
    add("--out", type=Path, default=Path("out/demo-model"), help="working folder (default: %(default)s)")
    add("--models", type=Path, default=Path("models/demo"), help="bundle folder (default: %(default)s)")
    add("--parts", default="disc,washer,plate,gear", help="part kinds (default: %(default)s)")
    add("--train-count", type=int, default=5000, help="training images (default: %(default)s)")
    add("--test-count", type=int, default=600, help="held-out images (default: %(default)s)")
    add(
        "--extra-chips",
        type=int,
        default=600,
        help="extra chip images (their own seed) added to the training set: chips are the kind the model "
        "misses most (docs/model-report.md); 0 for none (default: %(default)s)",
    )
    add(
        "--extra-scratches",
        type=int,
        default=600,
        help="extra scratch images (their own seed): with the extra chips, the two kinds behind the last "
        "misses at high recall (docs/model-report.md); 0 for none (default: %(default)s)",
    )
    add("--epochs", type=int, default=60, help="epochs with the classifier (default: %(default)s)")
    add("--map-epochs", type=int, default=5, help="defect-map epochs first (default: %(default)s)")
    add("--input-size", type=int, default=160, help="model input side in pixels (default: %(default)s)")
    add("--width", type=float, default=1.25, help="channel width multiplier (default: %(default)s)")
    add(
        "--reuse-data",
        action="store_true",
        help="keep the image sets and line videos an earlier run left in --out (same options assumed)",
    )
    add(
        "--reuse-model",
        action="store_true",
        help="keep the model an earlier run trained in --out/run; convert, evaluate and calibrate it",
    )
    args = parser.parse_args()
    out: Path = args.out
    data = ["--parts", args.parts]

    def synth(title: str, folder: Path, argv: list[str]) -> None:
        done = (folder / "synth.json").is_file() or (folder / "line.json").is_file()
        if args.reuse_data and done:
            print(f"=== {title}: reusing {folder}")
            return
        _step(title, argv)

    synth(
        "training set",
        out / "train",
        [
            "synth",
            "--out",
            str(out / "train"),
            "--count",
            str(args.train_count),
            "--seed",
            "100",
            "--overwrite",
            *data,
        ],
    )
    synth(
        "held-out set",
        out / "test",
        [
            "synth",
            "--out",
            str(out / "test"),
            "--count",
            str(args.test_count),
            "--seed",
            "101",
            "--overwrite",
            *data,
        ],
    )
    training_sets = ["train"]
    for folder, kind, count, extra_seed in [
        ("chips", "chip", args.extra_chips, "102"),
        ("scratches", "scratch", args.extra_scratches, "103"),
    ]:
        if count > 0:
            synth(
                f"extra {folder}",
                out / folder,
                ["synth", "--out", str(out / folder), "--count", str(count), "--seed", extra_seed,
                 "--kinds", kind, "--defect-ratio", "1", "--overwrite", *data],
            )  # fmt: skip
            training_sets.append(folder)
    training = _combined_manifest(out, training_sets) if len(training_sets) > 1 else out / "train"
    if args.reuse_model and (out / "run/model.keras").is_file():
        print(f"=== train: reusing {out / 'run/model.keras'}")
    else:
        _step(
            "train",
            ["train", "--data", str(training), "--out", str(out / "run"),
             "--epochs", str(args.epochs), "--map-epochs", str(args.map_epochs),
             "--input-size", str(args.input_size), "--width", str(args.width),
             "--min-epochs", str(args.epochs // 2)],
        )  # fmt: skip
    _step(
        "convert",
        [
            "convert",
            "--model",
            str(out / "run/model.keras"),
            "--out",
            str(out / "models"),
            "--name",
            "parts",
            "--variants",
            "float32,int8",
            "--rep-data",
            str(out / "train"),
        ],
    )
    int8 = out / "models/parts_int8.tflite"
    _step(
        "evaluate",
        [
            "evaluate",
            "--data",
            str(out / "test"),
            "--out",
            str(out / "report"),
            "--model",
            str(out / "models/parts_float32.tflite"),
            "--model",
            str(int8),
            "--target-recall",
            "0.95",
            "--write-threshold",
        ],
    )
    # The threshold that matters is the one on the line: calibrate on four line videos (other seeds than
    # the demo's and the tests'), at 1280x720 and 640x360. Recall 0.8, not 0.95: on the line this model
    # reaches 0.96 only at a precision near 0.46 (docs/model-report.md).
    calibrate = ["calibrate", "--model", str(int8), "--target-recall", "0.8", "--write"]
    for seed, size in (
        (301, ("1280", "720")),
        (302, ("640", "360")),
        (303, ("1280", "720")),
        (304, ("640", "360")),
    ):
        video = out / f"line-{seed}"
        synth(
            f"calibration line {seed}",
            video,
            ["synth", "--video", "--out", str(video), "--seed", str(seed), "--duration", "60",
             "--width", size[0], "--height", size[1], "--overwrite", *data],
        )  # fmt: skip
        calibrate += ["--video", str(video)]
    _step("calibrate on the line", calibrate)
    args.models.mkdir(parents=True, exist_ok=True)
    for path in (int8, int8.with_suffix(".json")):
        shutil.copy2(path, args.models / path.name)
    report = json.loads((out / "report/report.json").read_text())
    shutil.copy2(out / "report/report.json", args.models / "evaluation.json")
    for variant in report["variants"]:
        m = variant["metrics"]
        auc = m["defect_roc_auc"]
        auc_text = "n/a" if auc is None else f"{auc:.3f}"
        print(f"{variant['name']:<28} accuracy {m['accuracy']:.3f}  defect ROC-AUC {auc_text}")
    print(f"bundle: {args.models / int8.name} (+ card and evaluation.json)")
    return 0


def _combined_manifest(out: Path, folders: list[str]) -> Path:
    """One manifest over several synth folders (masks stay beside each folder's images).

    Rows go class by class, each folder's images in name order within a class: the order a folder scan of
    the same images gives, so the stratified split does not depend on how the sets were combined.
    """
    classes = sorted(
        {d.name for f in folders for d in (out / f).iterdir() if d.is_dir() and d.name != "masks"}
    )
    rows = ["path,label"]
    for label in classes:
        for folder in folders:
            if (out / folder / label).is_dir():
                rows += [
                    f"{folder}/{label}/{p.name},{label}" for p in sorted((out / folder / label).glob("*.png"))
                ]
    manifest = out / "train-combined.csv"
    manifest.write_text("\n".join(rows) + "\n")
    print(f"=== combined manifest: {manifest} ({len(rows) - 1} images from {', '.join(folders)})")
    return manifest


if __name__ == "__main__":
    sys.exit(main())
