"""Sliding windows over a recording, the standardisation fitted on training data, a split without leakage.

A window is ``length`` samples ending at sample ``end`` (exclusive). Its label is 1 when at least
``min_anomalous`` samples of the window, or of the ``horizon`` samples after it, are anomalous:
``horizon`` 0 detects anomalies the window shows, ``horizon`` > 0 also predicts the ones about to start.
``min_anomalous`` (default 3) keeps a window that only grazes a span with its last sample from being
called anomalous: one sample of a slow drift shows nothing, and such labels only teach noise.

The split is by time: the first ``1 - val_fraction`` of the recording trains, then ``length + horizon``
samples are skipped, then the rest validates; no validation window shares a sample (or a label
sample) with a training window. Standardisation statistics come from the training part only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Standardizer", "Windows", "make_windows", "time_split"]


@dataclass(frozen=True)
class Standardizer:
    """Per-channel (x - mean) / std; fitted on training samples only and stored in the model card."""

    mean: np.ndarray  # (C,)
    std: np.ndarray  # (C,)

    @classmethod
    def fit(cls, values: np.ndarray) -> Standardizer:
        std = values.std(axis=0)
        return cls(values.mean(axis=0).astype(np.float32), np.where(std > 1e-9, std, 1.0).astype(np.float32))

    def apply(self, values: np.ndarray) -> np.ndarray:
        return ((values - self.mean) / self.std).astype(np.float32)


@dataclass(frozen=True)
class Windows:
    x: np.ndarray  # (W, length, C) float32
    y: np.ndarray  # (W,) uint8
    ends: np.ndarray  # (W,) sample index one past each window's last sample

    def __len__(self) -> int:
        return len(self.y)


def make_windows(
    values: np.ndarray,
    anomaly: np.ndarray,
    length: int,
    stride: int,
    horizon: int = 0,
    min_anomalous: int = 3,
) -> Windows:
    """Every window of ``length`` samples, every ``stride`` samples, whose label span fits the data."""
    if length < 2 or stride < 1 or horizon < 0:
        raise ValueError(f"need length >= 2, stride >= 1, horizon >= 0; got {length}, {stride}, {horizon}")
    ends = np.arange(length, len(values) - horizon + 1, stride)
    if ends.size == 0:
        return Windows(np.zeros((0, length, values.shape[1]), np.float32), np.zeros(0, np.uint8), ends)
    x = np.stack([values[e - length : e] for e in ends]).astype(np.float32)
    # cumulative sum: "any anomaly in [e - length, e + horizon)" for every window at once
    csum = np.concatenate([[0], np.cumsum(anomaly.astype(np.int64))])
    y = (csum[ends + horizon] - csum[ends - length] >= max(1, min_anomalous)).astype(np.uint8)
    return Windows(x, y, ends)


def time_split(n_samples: int, val_fraction: float, length: int, horizon: int) -> tuple[slice, slice]:
    """(train, validation) sample ranges, in time order, with a gap of ``length + horizon`` between them."""
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
    cut = int(n_samples * (1.0 - val_fraction))
    return slice(0, cut), slice(min(n_samples, cut + length + horizon), n_samples)
