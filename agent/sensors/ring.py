"""The last ``length`` resampled rows of a sensor group: a fixed numpy ring, read out in time order."""

from __future__ import annotations

import numpy as np

__all__ = ["WindowRing"]


class WindowRing:
    def __init__(self, length: int, channels: int) -> None:
        self.length = length
        self._values = np.zeros((length, channels), np.float32)
        self._times = np.zeros(length, np.float64)
        self._next = 0  # slot the next row goes to
        self.filled = 0  # rows held, up to length
        self.since_window = 0  # rows pushed since the last window was read

    def push(self, t: float, values: np.ndarray) -> None:
        self._values[self._next] = values
        self._times[self._next] = t
        self._next = (self._next + 1) % self.length
        self.filled = min(self.length, self.filled + 1)
        self.since_window += 1

    def reset(self) -> None:
        """After a gap or a clock jump: the next window starts from fresh rows only."""
        self._next = self.filled = self.since_window = 0

    @property
    def full(self) -> bool:
        return self.filled == self.length

    def window(self) -> tuple[np.ndarray, np.ndarray]:
        """(times (length,), values (length, channels)) oldest first; resets the stride count."""
        self.since_window = 0
        order = (np.arange(self.length) + self._next) % self.length
        return self._times[order].copy(), self._values[order].copy()
