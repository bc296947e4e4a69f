"""Samples from independent channels, arriving late or out of order -> rows at the model's sample rate.

Rows sit on a fixed grid (multiples of 1/rate). A grid time is built once every channel could have
reported up to it: the newest sample time minus ``max_delay_s`` (the watermark). Each channel's value
there is interpolated linearly between its samples around it, or held from the last one when no later
sample came; a channel with no sample within ``max_gap_s`` of the grid time is a gap: no row is made
(nothing is invented), and the row after the gap says ``restart`` so the window starts again.

A sample more than ``max_clock_jump_s`` from the newest one (a PLC clock set, a replay restarted) is a
clock jump: everything held is dropped and the grid restarts at the new time. A sample older than the
last built row is late and dropped. All of it is counted in ``SensorCounters``.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass

import numpy as np

from agent.sensors.counters import SensorCounters
from agent.sensors.samples import Sample

__all__ = ["Resampler", "Row"]


@dataclass(frozen=True)
class Row:
    t: float
    values: np.ndarray  # (C,) float32, channel order of the model
    restart: bool  # True: the rows before this one are not contiguous with it (gap or clock jump)


class Resampler:
    def __init__(
        self,
        channels: list[str],
        rate_hz: float,
        counters: SensorCounters,
        max_gap_s: float = 1.0,
        max_delay_s: float = 0.5,
        max_clock_jump_s: float = 60.0,
    ) -> None:
        self.channels = channels
        self._index = {name: i for i, name in enumerate(channels)}
        self.step = 1.0 / rate_hz
        self.counters = counters
        self.max_gap_s, self.max_delay_s, self.max_jump_s = max_gap_s, max_delay_s, max_clock_jump_s
        self._times: list[list[float]] = [[] for _ in channels]
        self._values: list[list[float]] = [[] for _ in channels]
        self._grid_k: int | None = None  # next grid point is _grid_k * step
        self._newest: float | None = None
        self._restart = True
        self._in_gap = False

    def add(self, sample: Sample) -> list[Row]:
        """Take one sample (of a known channel); returns the rows it completes."""
        c = self._index[sample.channel]
        if self._newest is not None and abs(sample.t - self._newest) > self.max_jump_s:
            self.counters.clock_jumps += 1
            self._clear()
        if self._grid_k is None:
            self._grid_k = math.ceil(sample.t / self.step - 1e-9)
        elif sample.t < (self._grid_k - 1) * self.step:
            self.counters.late += 1  # the rows around it are built already
            return []
        pos = bisect.bisect(self._times[c], sample.t)
        self._times[c].insert(pos, sample.t)
        self._values[c].insert(pos, sample.value)
        self.counters.samples += 1
        self._newest = sample.t if self._newest is None else max(self._newest, sample.t)
        return self._build(self._newest - self.max_delay_s)

    def flush(self) -> list[Row]:
        """At the end of a stream: build every row up to the newest sample."""
        return [] if self._newest is None else self._build(self._newest)

    def _clear(self) -> None:
        for times, values in zip(self._times, self._values, strict=True):
            times.clear()
            values.clear()
        self._grid_k, self._newest, self._restart = None, None, True

    def _build(self, watermark: float) -> list[Row]:
        rows: list[Row] = []
        assert self._grid_k is not None
        while self._grid_k * self.step <= watermark + 1e-9:
            t = self._grid_k * self.step
            self._grid_k += 1
            values = [self._value_at(c, t) for c in range(len(self.channels))]
            if any(v is None for v in values):
                if not self._in_gap:
                    self.counters.gaps += 1
                self._in_gap, self._restart = True, True
                continue
            self._in_gap = False
            rows.append(Row(t, np.asarray(values, np.float32), self._restart))
            self._restart = False
        self._prune(self._grid_k * self.step)
        self.counters.rows += len(rows)
        return rows

    def _value_at(self, c: int, t: float) -> float | None:
        times, values = self._times[c], self._values[c]
        i = bisect.bisect_right(times, t)  # times[i-1] <= t < times[i]
        before = i - 1 if i > 0 else None
        after = i if i < len(times) else None
        if before is not None and times[before] == t:
            return values[before]
        if before is not None and after is not None and times[after] - times[before] <= self.max_gap_s:
            w = (t - times[before]) / (times[after] - times[before])
            return values[before] + w * (values[after] - values[before])
        if before is not None and t - times[before] <= self.max_gap_s:
            return values[before]  # held: no later sample within the delay
        if after is not None and times[after] - t <= self.max_gap_s and before is None:
            return values[after]  # the stream's first samples
        return None

    def _prune(self, next_t: float) -> None:
        """Drop samples no future row can use (keep the last one before the next grid time)."""
        for times, values in zip(self._times, self._values, strict=True):
            keep = max(0, bisect.bisect_right(times, next_t) - 1)
            keep = min(keep, bisect.bisect_left(times, next_t - self.max_gap_s))
            if keep:
                del times[:keep]
                del values[:keep]
