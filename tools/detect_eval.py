"""``inspect-model evaluate`` for detectors: mAP@0.5, precision/recall, image verdicts, size, invoke time.

    inspect-model evaluate --data data/holdout --model models/det_float32.tflite \\
        --model models/det_int8.tflite --out reports/det

Every image goes through the agent's own bundle (preprocess, interpreter, output parsing), so the
figures are the device's. Ground truth is one box per defect image around its mask (as training
reads it). Writes ``report.json`` and prints one line per variant.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from agent.bundle import load_bundle
from agent.modelcard import card_path_for, load_card
from agent.status import ExitStatus, InspectError
from tools._cli_util import ensure_output_dir
from tools.dataset import load_images
from tools.detect_metrics import Found, Truth, detection_metrics
from tools.metrics import _precision_recall
from tools.train_detect import boxes_of

__all__ = ["is_detector", "run"]

WARMUP_RUNS = 5


def is_detector(models: list[Path]) -> bool:
    """True when the first model is a .tflite whose card says ``task: detection``."""
    card = card_path_for(models[0])
    return models[0].suffix == ".tflite" and card.is_file() and load_card(card).task == "detection"


def _evaluate(path: Path, args: argparse.Namespace) -> dict[str, Any]:
    bundle = load_bundle(path, num_threads=1)
    card = bundle.card
    assert card.detection is not None
    # Pixels and masks at the model's size, as training saw them (the bundle's resize is then the identity).
    data = load_images(args.data, card.input, good_label=card.good_label)
    defects = [label for label in data.class_names if label != card.good_label]
    unknown = sorted(set(defects) - set(card.labels))
    if unknown:
        raise InspectError(f"{args.data} has classes {unknown} the detector {path} does not know",
                           ExitStatus.DATA_ERROR)  # fmt: skip
    truth_boxes = boxes_of(data, defects)
    truths = [[Truth(defects[c], (x0, y0, x1, y1)) for c, x0, y0, x1, y1 in b] for b in truth_boxes]
    found: list[list[Found]] = []
    image_scores = []
    for pixels in data.pixels:
        frame = cv2.cvtColor(pixels, cv2.COLOR_RGB2BGR) if pixels.shape[2] == 3 else pixels
        scores, _ = bundle.classify(frame)
        found.append([Found(d.label, d.score, d.box) for d in scores.detections])
        image_scores.append(scores.defect_score)
    is_defect = np.array([bool(b) for b in truth_boxes])
    precision, recall = _precision_recall(is_defect, np.array(image_scores), card.thresholds.defect)
    tensor = np.zeros(card.input.shape, dtype=card.input.dtype)
    samples = []
    for i in range(WARMUP_RUNS + args.latency_runs):
        start = time.perf_counter()
        bundle.model.run(tensor)
        if i >= WARMUP_RUNS:
            samples.append((time.perf_counter() - start) * 1000)
    image_level = {
        "threshold": card.thresholds.defect,
        "precision": round(precision, 4),
        "recall": round(recall, 4),
        "defect_images": int(is_defect.sum()),
        "good_images": int((~is_defect).sum()),
    }
    invoke = {
        "p50": round(float(np.percentile(samples, 50)), 3),
        "p90": round(float(np.percentile(samples, 90)), 3),
        "runs": len(samples),
    }
    return {
        "model": str(path),
        "quantization": card.quantization,
        "bytes": path.stat().st_size,
        "detection": detection_metrics(truths, found, defects, 0.5, card.detection.score_threshold),
        "image_level": image_level,
        "invoke_ms_1_thread": invoke,
    }


def run(args: argparse.Namespace) -> int:
    out = ensure_output_dir(args.out)
    results = [_evaluate(path, args) for path in args.model]
    report = {"data": str(args.data), "variants": results}
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    for r in results:
        d, i = r["detection"], r["image_level"]
        print(
            f"{Path(r['model']).name}: {r['bytes']} bytes, mAP@0.5 {d['map']}, "
            f"box precision {d['precision']} recall {d['recall']} (score >= {d['score_threshold']}); "
            f"images: recall {i['recall']} precision {i['precision']} (> {i['threshold']:.3f}); "
            f"invoke p50 {r['invoke_ms_1_thread']['p50']} ms"
        )
    print(f"wrote {out / 'report.json'}")
    return int(ExitStatus.OK)
