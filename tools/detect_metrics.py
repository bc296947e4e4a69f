"""Detection metrics at one IoU: per-class average precision (VOC all-points), mAP, precision and recall.

Boxes are (x0, y0, x1, y1) in pixels. A prediction is a true positive when it overlaps a not yet
matched ground-truth box of its class by IoU >= ``iou``, best scores matched first (VOC/COCO rule).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["Box", "Found", "Truth", "detection_metrics", "iou"]

Box = tuple[float, float, float, float]


@dataclass(frozen=True)
class Truth:
    label: str
    box: Box


@dataclass(frozen=True)
class Found:
    label: str
    score: float
    box: Box


def iou(a: Box, b: Box) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _matches(truths: Sequence[Sequence[Truth]], found: Sequence[Sequence[Found]], label: str, at: float
             ) -> tuple[np.ndarray, np.ndarray, int]:  # fmt: skip
    """(scores, is-true-positive) of every prediction of ``label``, and how many truths it has."""
    rows: list[tuple[float, bool]] = []
    total = 0
    for image_truths, image_found in zip(truths, found, strict=True):
        boxes = [t.box for t in image_truths if t.label == label]
        total += len(boxes)
        used = [False] * len(boxes)
        for f in sorted((f for f in image_found if f.label == label), key=lambda f: -f.score):
            overlaps = [iou(f.box, b) if not used[j] else -1.0 for j, b in enumerate(boxes)]
            best = int(np.argmax(overlaps)) if overlaps else -1
            hit = best >= 0 and overlaps[best] >= at
            if hit:
                used[best] = True
            rows.append((f.score, hit))
    rows.sort(key=lambda r: -r[0])
    return np.array([r[0] for r in rows]), np.array([r[1] for r in rows], dtype=bool), total


def _average_precision(hits: np.ndarray, total: int) -> float:
    if total == 0:
        return float("nan")
    if hits.size == 0:
        return 0.0
    tp = np.cumsum(hits)
    recall = tp / total
    precision = tp / np.arange(1, hits.size + 1)
    # All-points interpolation: precision made monotone from the right, summed over recall steps.
    envelope = np.maximum.accumulate(precision[::-1])[::-1]
    steps = np.diff(np.concatenate([[0.0], recall]))
    return float(np.sum(steps * envelope))


def detection_metrics(
    truths: Sequence[Sequence[Truth]],
    found: Sequence[Sequence[Found]],
    labels: Sequence[str],
    at_iou: float = 0.5,
    score_threshold: float = 0.3,
) -> dict[str, object]:
    """mAP@``at_iou`` over labels with ground truth, per-label AP, and precision/recall at a score."""
    per_label: dict[str, float] = {}
    tp = fp = total = 0
    for label in labels:
        scores, hits, count = _matches(truths, found, label, at_iou)
        ap = _average_precision(hits, count)
        if not np.isnan(ap):
            per_label[label] = round(ap, 4)
        kept = scores >= score_threshold
        tp += int(np.sum(hits & kept))
        fp += int(np.sum(~hits & kept))
        total += count
    return {
        "iou": at_iou,
        "map": round(float(np.mean(list(per_label.values()))), 4) if per_label else None,
        "ap_per_label": per_label,
        "score_threshold": score_threshold,
        "precision": round(tp / (tp + fp), 4) if tp + fp else None,
        "recall": round(tp / total, 4) if total else None,
        "true_boxes": total,
        "images": len(truths),
    }
