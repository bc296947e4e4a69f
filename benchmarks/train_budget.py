"""Training time on a set shaped like the public ones (issue 3: 200 to 2,000 images in under 15 minutes).

    python benchmarks/train_budget.py --count 2000 --budget 15 --out out/bench/train-budget
    python benchmarks/train_budget.py --count 200 --budget 15 --out out/bench/train-budget-200

The public casting and magnetic-tile defect sets are greyscale photos of varying size, imbalanced, with
masks (magnetic tile) in an MVTec-style ``ground_truth/`` folder, JPEG on disk. Nothing can be downloaded
here, so this script draws synthetic parts (``inspect-model synth``) and rewrites them that way: grey,
JPEG at quality 90, each image resized to its own width and height (180-480 px, not square), 35 %
defects, masks as ``ground_truth/<kind>/<stem>_mask.png``. A held-out set from another seed gets the same
treatment. It then times ``inspect-model train --time-budget`` as a user would run it (the whole command,
TensorFlow import and image loading included), evaluates the model on the held-out set, and writes a JSON
record with the wall time, the epochs that fitted, the machine's load and the held-out figures.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np

DEFECT_SHARE = 0.35


def _tool(*args: str) -> float:
    print("inspect-model", " ".join(args), flush=True)
    began = time.monotonic()
    subprocess.run([sys.executable, "-m", "tools.cli", *args], check=True)
    return time.monotonic() - began


def _read(path: Path, flags: int) -> np.ndarray:
    image = cv2.imread(str(path), flags)
    if image is None:
        raise SystemExit(f"cannot read {path}")
    return image


def real_like(synth_dir: Path, out: Path, seed: int) -> dict[str, int]:
    """Rewrites a synth image set as a greyscale JPEG set of varying sizes with MVTec-style masks."""
    rng = np.random.default_rng(seed)
    counts: dict[str, int] = {}
    for image_path in sorted(synth_dir.glob("*/*.png")):
        label = image_path.parent.name
        if label == "masks":
            continue
        width, height = (int(v) for v in rng.integers(180, 481, size=2))
        grey = _read(image_path, cv2.IMREAD_GRAYSCALE)
        target = out / label / f"{image_path.stem}.jpg"
        target.parent.mkdir(parents=True, exist_ok=True)
        resized = cv2.resize(grey, (width, height), interpolation=cv2.INTER_AREA)
        cv2.imwrite(str(target), resized, [cv2.IMWRITE_JPEG_QUALITY, 90])
        mask_path = synth_dir / "masks" / label / image_path.name
        if mask_path.is_file():
            mask = cv2.resize(_read(mask_path, cv2.IMREAD_GRAYSCALE), (width, height))
            mask_target = out / "ground_truth" / label / f"{image_path.stem}_mask.png"
            mask_target.parent.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(mask_target), np.where(mask > 127, 255, 0).astype(np.uint8))
        counts[label] = counts.get(label, 0) + 1
    return counts


def _dataset(out: Path, name: str, count: int, seed: int) -> tuple[Path, dict[str, int]]:
    folder = out / name
    record = folder / "counts.json"
    if record.is_file():
        return folder, json.loads(record.read_text())
    synth = out / f"{name}-synth"
    _tool("synth", "--out", str(synth), "--count", str(count), "--seed", str(seed),
          "--defect-ratio", str(DEFECT_SHARE), "--overwrite")  # fmt: skip
    counts = real_like(synth, folder, seed)
    record.write_text(json.dumps(counts))
    return folder, counts


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add = parser.add_argument
    add(
        "--out",
        type=Path,
        default=Path("out/bench/train-budget"),
        help="scratch folder (default: %(default)s)",
    )
    add("--count", type=int, default=2000, help="training images (default: %(default)s)")
    add("--test-count", type=int, default=400, help="held-out images (default: %(default)s)")
    add("--budget", type=float, default=15.0, help="--time-budget in minutes (default: %(default)s)")
    add("--epochs", type=int, default=200, help="--epochs, the cap under the budget (default: %(default)s)")
    add("--input-size", type=int, default=128, help="model input side (default: %(default)s)")
    add(
        "--result",
        type=Path,
        help="JSON record (default: benchmarks/results/train-budget-<count>-<tag>.json)",
    )
    args = parser.parse_args()
    tag = f"{platform.machine()}-{os.cpu_count()}core"
    result = args.result or Path(f"benchmarks/results/train-budget-{args.count}-{tag}.json")
    train, train_counts = _dataset(args.out, "train", args.count, seed=500)
    test, test_counts = _dataset(args.out, "test", args.test_count, seed=501)
    run = args.out / "run"
    load_before = os.getloadavg()
    seconds = _tool("train", "--data", str(train), "--out", str(run), "--color", "gray",
                    "--input-size", str(args.input_size), "--epochs", str(args.epochs),
                    "--time-budget", str(args.budget))  # fmt: skip
    load_after = os.getloadavg()
    _tool("evaluate", "--data", str(test), "--out", str(args.out / "report"), "--model",
          str(run / "model.keras"), "--target-recall", "0.95", "--latency-runs", "5")  # fmt: skip
    training = json.loads((run / "training.json").read_text())
    report_variant = json.loads((args.out / "report" / "report.json").read_text())["variants"][0]
    metrics = report_variant["metrics"]
    record = {
        "what": "inspect-model train --time-budget on a greyscale JPEG set of varying sizes with masks",
        "machine": tag,
        "load_average_1min": {"before": round(load_before[0], 2), "after": round(load_after[0], 2)},
        "train_images": train_counts,
        "held_out_images": test_counts,
        "budget_minutes": args.budget,
        "wall_seconds": round(seconds, 1),
        "training_seconds_recorded": training["seconds"],
        "map_epochs_run": training["time_budget"]["map_epochs_run"],
        "epochs_run": training["epochs_run"],
        "typical_epoch_s": training["time_budget"]["typical_epoch_s"],
        "best_epoch": training["best_epoch"],
        "held_out": {
            "accuracy": metrics["accuracy"],
            "defect_roc_auc": metrics["defect_roc_auc"],
            "at_recall_0.95": report_variant["threshold_for_target_recall"],
        },
    }
    result.parent.mkdir(parents=True, exist_ok=True)
    result.write_text(json.dumps(record, indent=2) + "\n")
    print(json.dumps(record, indent=2))
    print(f"wrote {result}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
