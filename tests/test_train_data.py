"""Class weights for training: how much each class counts in the loss."""

from __future__ import annotations

import numpy as np
import pytest

from tools.train_data import class_weights


def _total(labels: np.ndarray, weights: dict[int, float], classes: list[int]) -> float:
    return sum(weights[c] * int(np.count_nonzero(labels == c)) for c in classes)


def test_per_class_balance_gives_every_class_the_same_total_weight() -> None:
    labels = np.array([0] * 10 + [1] * 50 + [2] * 40)  # 1 is good
    weights = class_weights(labels, 3)
    totals = [_total(labels, weights, [c]) for c in range(3)]
    assert totals == pytest.approx([totals[0]] * 3)


def test_good_vs_defect_balance_weighs_good_as_much_as_all_defects() -> None:
    labels = np.array([0] * 10 + [1] * 50 + [2] * 40 + [3] * 5)  # 1 is good, three defect kinds
    weights = class_weights(labels, 4, good_index=1)
    good, defects = _total(labels, weights, [1]), _total(labels, weights, [0, 2, 3])
    assert good == pytest.approx(defects) == pytest.approx(len(labels) / 2)
    kinds = [_total(labels, weights, [c]) for c in (0, 2, 3)]
    assert kinds == pytest.approx([good / 3] * 3)  # the kinds share the defect half equally


def test_absent_classes_keep_weight_one_and_a_missing_good_class_falls_back() -> None:
    labels = np.array([0] * 4 + [2] * 6)
    assert class_weights(labels, 3, good_index=1) == class_weights(labels, 3)  # no good images: per class
    assert class_weights(labels, 3, good_index=0)[1] == 1.0
    only_good = np.array([1] * 5)
    assert class_weights(only_good, 3, good_index=1)[1] == pytest.approx(1.0)
