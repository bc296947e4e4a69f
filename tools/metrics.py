"""Metrics for a good/defect classifier, shared by ``train`` (validation) and ``evaluate``.

The defect score of an image is 1 - p(good). A part is NG when its score is
strictly greater than the threshold (a score equal to the threshold is good).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

__all__ = [
    "ThresholdChoice",
    "classification_metrics",
    "defect_scores",
    "flagged_by_class",
    "flagged_per_folder",
    "threshold_for_recall",
]


@dataclass(frozen=True)
class ThresholdChoice:
    threshold: float
    precision: float
    recall: float
    target_recall: float

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def defect_scores(probs: np.ndarray, good_index: int) -> np.ndarray:
    return np.clip(1.0 - probs[:, good_index], 0.0, 1.0)


def _precision_recall(is_defect: np.ndarray, scores: np.ndarray, threshold: float) -> tuple[float, float]:
    flagged = scores > threshold
    true_pos = int(np.sum(flagged & is_defect))
    precision = true_pos / max(1, int(np.sum(flagged))) if np.any(flagged) else 1.0
    recall = true_pos / max(1, int(np.sum(is_defect)))
    return precision, recall


def threshold_for_recall(is_defect: np.ndarray, scores: np.ndarray, target: float) -> ThresholdChoice:
    """The highest threshold whose defect recall still reaches ``target`` (highest = best precision).

    It sits halfway between the k-th highest defect score (k = ceil(target * defects))
    and the next lower score of any image, so a little drift on the device does not
    immediately cost recall.
    """
    is_defect = is_defect.astype(bool)
    defect_sorted = np.sort(scores[is_defect])[::-1]
    if defect_sorted.size == 0:
        return ThresholdChoice(0.5, *_precision_recall(is_defect, scores, 0.5), target_recall=target)
    k = max(1, math.ceil(target * defect_sorted.size))
    kth = float(defect_sorted[k - 1])
    lower = scores[scores < kth]
    threshold = (kth + float(lower.max())) / 2.0 if lower.size else kth / 2.0
    precision, recall = _precision_recall(is_defect, scores, threshold)
    return ThresholdChoice(threshold, precision, recall, target)


def classification_metrics(
    y_true: np.ndarray, probs: np.ndarray, class_names: list[str], good_index: int, threshold: float
) -> dict[str, Any]:
    """Accuracy, per-class report, confusion matrix, good-vs-defect ROC-AUC and P/R at ``threshold``."""
    from sklearn.metrics import accuracy_score, classification_report, confusion_matrix, roc_auc_score

    y_pred = probs.argmax(axis=1)
    labels = list(range(len(class_names)))
    is_defect = y_true != good_index
    scores = defect_scores(probs, good_index)
    both_present = bool(is_defect.any() and (~is_defect).any())
    precision, recall = _precision_recall(is_defect, scores, threshold)
    return {
        "images": len(y_true),
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "per_class": classification_report(
            y_true, y_pred, labels=labels, target_names=class_names, output_dict=True, zero_division=0
        ),
        "confusion_matrix": confusion_matrix(y_true, y_pred, labels=labels).tolist(),
        "defect_roc_auc": float(roc_auc_score(is_defect, scores)) if both_present else None,
        "defect_threshold": float(threshold),
        "defect_precision": precision,
        "defect_recall": recall,
    }


def flagged_by_class(
    labels: np.ndarray, class_names: list[str], flagged: np.ndarray
) -> dict[str, float | None]:
    """Fraction flagged NG per true class, in class order (None for a class without images)."""
    per_class = flagged_per_folder([class_names[int(label)] for label in labels], flagged)
    return {name: per_class.get(name) for name in class_names}


def flagged_per_folder(folders: list[str], flagged: np.ndarray) -> dict[str, float]:
    """Fraction flagged NG per source folder: recall on each defect kind, false-positive rate on good."""
    names = np.asarray(folders)
    return {name: float(np.mean(flagged[names == name])) for name in sorted(set(folders))}
