"""``inspect-model calibrate``: set a model's defect threshold from line videos with ground truth.

    inspect-model synth --video --out data/cal1 --seed 11 --duration 60
    inspect-model calibrate --model models/parts_int8.tflite --video data/cal1 --target-recall 0.9 --write

A threshold chosen on still images is chosen for their mix of defects and their images; a line has
its own (fewer defects per part, parts cropped by the presence trigger, MJPEG, its belt and lamp).
This runs the agent's own trigger and model over each video exactly as the device does, matches
every verdict to the ground-truth part, and picks the highest threshold that keeps ``--target-recall``
of the defects (tools.metrics.threshold_for_recall); ``--write`` stores it in the model card with its
source.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from agent.bundle import load_bundle
from agent.demo_report import LineTruth, belt_roi, match_results
from agent.modelcard import card_path_for, load_card, save_card, with_defect_threshold
from agent.render import crop_padded
from agent.status import ExitStatus, InspectError
from agent.trigger import PresenceSettings, PresenceTrigger
from agent.types import Frame
from tools._cli_util import HelpFormatter, require_dir, require_file
from tools.metrics import flagged_per_folder, threshold_for_recall

__all__ = ["add_parser", "line_scores", "run"]

log = logging.getLogger(__name__)


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "calibrate",
        help="defect threshold for a target recall, measured on line videos with ground truth",
        description=__doc__,
        formatter_class=HelpFormatter,
    )
    p.add_argument("--model", type=Path, required=True, help=".tflite bundle (card beside it)")
    p.add_argument(
        "--video",
        type=Path,
        action="append",
        required=True,
        help="synth --video folder (line.avi + line.json); repeat for more",
    )
    p.add_argument("--target-recall", type=float, default=0.9, help="defect recall to keep")
    p.add_argument("--write", action="store_true", help="store the threshold in the model card")
    p.set_defaults(func=run)


def line_scores(model: Path, video: Path) -> tuple[np.ndarray, np.ndarray]:
    """(defect score, true label such as 'good' or 'chip') per ground-truth part the trigger inspected."""
    bundle = load_bundle(model, None)
    meta = json.loads(require_file(video / "line.json", "line ground truth").read_text())
    trigger = PresenceTrigger(PresenceSettings(), belt_roi(meta))
    capture = cv2.VideoCapture(str(video / meta["path"]))
    results: list[dict[str, Any]] = []
    scores: list[float] = []
    try:
        for index in range(int(meta["frame_count"])):
            ok, image = capture.read()
            if not ok:
                break
            for inspection in trigger.update(Frame("calibrate", image, index, 0.0, 0.0, index)):
                assert inspection.part_box is not None
                result, _ = bundle.classify(crop_padded(image, inspection.crop))
                scores.append(result.defect_score)
                box = list(inspection.part_box)
                results.append({"part_box": box, "frame": {"source_pos": index}})
    finally:
        capture.release()
    truth = LineTruth.load(video / "line.json")
    labels = {p["id"]: p["label"] for p in truth.parts}
    matched = [
        (s, labels[i]) for s, i in zip(scores, match_results(results, truth), strict=True) if i is not None
    ]
    return np.array([s for s, _ in matched], dtype=float), np.array([k for _, k in matched], dtype=str)


def run(args: argparse.Namespace) -> int:
    require_file(args.model, "model")
    all_scores, all_labels = [], []
    for video in args.video:
        scores, labels = line_scores(args.model, require_dir(video, "line video folder"))
        log.info("%s: %d parts inspected, %d defective", video, len(scores), int(np.sum(labels != "good")))
        all_scores.append(scores)
        all_labels.append(labels)
    scores, labels = np.concatenate(all_scores), np.concatenate(all_labels)
    defects = labels != "good"
    if defects.all() or not defects.any():
        raise InspectError(
            "calibration needs both good and defective parts on the line", ExitStatus.DATA_ERROR
        )
    choice = threshold_for_recall(defects, scores, args.target_recall)
    print(
        f"{len(scores)} parts ({int(defects.sum())} defective): threshold {choice.threshold:.4f} gives "
        f"recall {choice.recall:.3f} at precision {choice.precision:.3f} (target recall {args.target_recall})"
    )
    # Which kinds the threshold misses (and how often it flags good parts): the overall recall hides it.
    flagged = scores > choice.threshold  # NG needs score > threshold, as on the device
    for kind, share in flagged_per_folder(labels.tolist(), flagged).items():
        count = int(np.sum(labels == kind))
        what = "flagged (false alarms)" if kind == "good" else "flagged"
        print(f"  {kind:<10} {share:6.1%} of {count:3d} {what}")
    if args.write:
        path = card_path_for(args.model)
        source = f"line calibration: {len(scores)} parts in {len(args.video)} video(s)"
        card = with_defect_threshold(load_card(path), round(choice.threshold, 4), source, args.target_recall)
        save_card(card, path)
        print(f"stored defect threshold {choice.threshold:.4f} in {path}")
    return int(ExitStatus.OK)
