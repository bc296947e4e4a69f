"""Metrics for an anomaly score per window: accuracy, precision, recall, F1, ROC-AUC, confusion matrix.

A window is anomalous when its score is strictly greater than the threshold (equal is normal), as
for images (``tools/metrics.py``, whose ``threshold_for_recall`` picks the threshold here too).
Span metrics compare detected time intervals with the labelled anomaly spans.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["binary_metrics", "part_metrics", "span_metrics"]


def binary_metrics(y_true: np.ndarray, scores: np.ndarray, threshold: float) -> dict[str, Any]:
    from sklearn.metrics import (
        accuracy_score,
        confusion_matrix,
        f1_score,
        precision_score,
        recall_score,
        roc_auc_score,
    )

    y_true = y_true.astype(int)
    y_pred = (scores > threshold).astype(int)
    both = bool(y_true.any() and (1 - y_true).any())
    return {
        "windows": len(y_true),
        "anomalous_windows": int(y_true.sum()),
        "threshold": float(threshold),
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "precision": float(precision_score(y_true, y_pred, zero_division=0)),
        "recall": float(recall_score(y_true, y_pred, zero_division=0)),
        "f1": float(f1_score(y_true, y_pred, zero_division=0)),
        "roc_auc": float(roc_auc_score(y_true, scores)) if both else None,
        "confusion_matrix": confusion_matrix(y_true, y_pred, labels=[0, 1]).tolist(),
    }


def part_metrics(
    detected: Sequence[tuple[float, float]], parts: Sequence[tuple[float, float, bool]]
) -> dict[str, Any] | None:
    """Quality per produced part: NG when a detection overlaps the part's time. None without parts."""
    if not parts:
        return None
    y_true = np.array([ng for _s, _e, ng in parts], dtype=int)
    flagged = np.array([any(d0 < end and start < d1 for d0, d1 in detected) for start, end, _ng in parts])
    result = binary_metrics(y_true, flagged.astype(float), 0.5)
    result.pop("threshold")
    result.pop("roc_auc")  # the predictions are 0/1: an AUC of them would say nothing
    result["parts"], result["parts_ng"] = result.pop("windows"), result.pop("anomalous_windows")
    return result


def span_metrics(
    detected: Sequence[tuple[float, float]], labelled: Sequence[tuple[float, float]], tolerance_s: float = 0.0
) -> dict[str, Any]:
    """Event-level precision and recall: a detection is true when it overlaps a labelled span widened by
    ``tolerance_s`` on both sides; a span is found when any detection overlaps it (so widened)."""

    def hit(a: tuple[float, float], b: tuple[float, float]) -> bool:
        return a[0] < b[1] + tolerance_s and b[0] - tolerance_s < a[1]

    true_detections = sum(any(hit(d, s) for s in labelled) for d in detected)
    found = sum(any(hit(d, s) for d in detected) for s in labelled)
    return {
        "detections": len(detected),
        "spans": len(labelled),
        "true_detections": true_detections,
        "spans_found": found,
        "precision": true_detections / len(detected) if detected else 1.0,
        "recall": found / len(labelled) if labelled else 1.0,
        "tolerance_s": tolerance_s,
    }
