"""Threshold calibration and the strict '>' rule: a score equal to the threshold is good."""

from __future__ import annotations

import numpy as np
import pytest

from tools.metrics import classification_metrics, defect_scores, threshold_for_recall


@pytest.mark.parametrize(
    ("defect", "good", "target", "recall", "precision"),
    [
        ([0.9, 0.8, 0.7, 0.6], [0.1, 0.2], 1.0, 1.0, 1.0),  # separable: full recall, no false alarms
        ([0.9, 0.8, 0.7, 0.3], [0.1, 0.5], 1.0, 1.0, 0.8),  # reaching the last defect costs one good part
        ([0.9, 0.8, 0.7, 0.3], [0.1, 0.5], 0.75, 0.75, 1.0),  # a lower target keeps precision
        ([0.5, 0.5], [0.5, 0.1], 1.0, 1.0, 2 / 3),  # ties with a good part: recall wins
    ],
)
def test_threshold_reaches_target_recall(
    defect: list[float], good: list[float], target: float, recall: float, precision: float
) -> None:
    scores = np.array(defect + good)
    is_defect = np.array([True] * len(defect) + [False] * len(good))
    choice = threshold_for_recall(is_defect, scores, target)
    assert choice.recall == pytest.approx(recall)
    assert choice.precision == pytest.approx(precision)
    assert choice.recall >= target


def test_score_equal_to_threshold_is_good() -> None:
    metrics = classification_metrics(
        np.array([0, 1]), np.array([[0.5, 0.5], [0.2, 0.8]]), ["good", "scratch"], 0, threshold=0.5
    )
    assert metrics["defect_precision"] == 1.0 and metrics["defect_recall"] == 1.0


def test_classification_metrics_shape() -> None:
    probs = np.array([[0.9, 0.05, 0.05], [0.1, 0.8, 0.1], [0.2, 0.2, 0.6], [0.6, 0.3, 0.1]])
    y_true = np.array([0, 1, 2, 2])
    metrics = classification_metrics(y_true, probs, ["good", "scratch", "spot"], 0, threshold=0.5)
    assert metrics["accuracy"] == pytest.approx(0.75)
    assert metrics["confusion_matrix"] == [[1, 0, 0], [0, 1, 0], [1, 0, 1]]
    assert metrics["per_class"]["spot"]["recall"] == pytest.approx(0.5)
    assert metrics["defect_roc_auc"] == pytest.approx(1.0)
    np.testing.assert_allclose(defect_scores(probs, 0), [0.1, 0.9, 0.8, 0.4])
