"""Sliding windows, their labels, and a time-ordered split that leaks nothing into validation."""

from __future__ import annotations

import numpy as np
import pytest

from tools.timeseries.windows import Standardizer, make_windows, time_split


def test_window_label_counts_anomalous_samples_in_window_and_horizon() -> None:
    values = np.arange(40, dtype=np.float32).reshape(20, 2)
    anomaly = np.zeros(20, np.uint8)
    anomaly[10:13] = 1  # samples 10, 11, 12
    w = make_windows(values, anomaly, length=5, stride=1, horizon=0, min_anomalous=3)
    # window ending at e covers [e-5, e): needs all three of 10..12 inside: e in 13..15
    assert [int(e) for e, y in zip(w.ends, w.y, strict=True) if y] == [13, 14, 15]
    assert np.array_equal(w.x[0], values[0:5])
    ahead = make_windows(values, anomaly, length=5, stride=1, horizon=2, min_anomalous=1)
    # with a horizon of 2, the window ending at 9 (samples 4..8, label span to 10) already sees sample 10
    assert int(ahead.ends[ahead.y.astype(bool)][0]) == 9
    assert int(ahead.ends[-1]) == 18  # the last window leaves room for its horizon


def test_stride_and_too_short() -> None:
    values = np.zeros((10, 1), np.float32)
    w = make_windows(values, np.zeros(10, np.uint8), length=4, stride=3)
    assert list(w.ends) == [4, 7, 10]
    assert len(make_windows(values, np.zeros(10, np.uint8), length=11, stride=1)) == 0
    with pytest.raises(ValueError):
        make_windows(values, np.zeros(10, np.uint8), length=1, stride=1)


def test_time_split_has_a_gap_so_no_window_or_label_is_shared() -> None:
    n, length, horizon = 1000, 64, 8
    train, val = time_split(n, 0.25, length, horizon)
    assert train.start == 0 and train.stop == 750 and val.start == 750 + length + horizon and val.stop == n
    index = np.arange(n, dtype=np.float32)[:, None]
    flags = np.zeros(n, np.uint8)
    tr = make_windows(index[train], flags[train], length, 1, horizon)
    va = make_windows(index[val], flags[val], length, 1, horizon)
    last_train_label = int(tr.ends[-1]) + horizon - 1  # the last sample a training label looked at
    assert max(int(tr.x.max()), last_train_label) < int(va.x.min()), "validation shares a training sample"


def test_standardizer_fitted_on_training_part_only() -> None:
    values = np.concatenate([np.full((50, 2), 10.0), np.full((50, 2), 1000.0)]).astype(np.float32)
    values[:50, 0] += np.linspace(-1, 1, 50)
    train, _ = time_split(100, 0.5, 2, 0)
    scaler = Standardizer.fit(values[train])
    assert scaler.mean == pytest.approx([10.0, 10.0])
    assert scaler.std[1] == 1.0  # a constant channel divides by 1, not 0
    assert scaler.apply(values)[-1, 1] == pytest.approx(990.0)
