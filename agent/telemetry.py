"""Numbers for the ``stats`` message: stage latency percentiles and the process's CPU, RSS, temperature."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import numpy as np

__all__ = ["LatencyRecorder", "ProcessMeter"]


class LatencyRecorder:
    """Milliseconds per stage, collected between two ``take()`` calls (one stats interval)."""

    def __init__(self, max_samples: int = 10_000) -> None:
        self._samples: dict[str, list[float]] = {}
        self._lock = threading.Lock()
        self._max = max_samples  # per stage and interval: bounds memory if stats are never taken

    def add(self, stage: str, ms: float) -> None:
        with self._lock:
            samples = self._samples.setdefault(stage, [])
            if len(samples) < self._max:
                samples.append(ms)

    def take(self) -> dict[str, tuple[float, float, int]]:
        """{stage: (p50, p99, count)} since the last call, and start a new interval."""
        with self._lock:
            samples, self._samples = self._samples, {}
        return {
            stage: (float(np.percentile(v, 50)), float(np.percentile(v, 99)), len(v))
            for stage, v in samples.items()
            if v
        }


class ProcessMeter:
    """CPU percent of this process between calls (100 = one core), RSS, and SoC temperature if readable."""

    _THERMAL = Path("/sys/class/thermal/thermal_zone0/temp")

    def __init__(self) -> None:
        self._last = (time.monotonic(), self._cpu_seconds())

    @staticmethod
    def _cpu_seconds() -> float:
        t = os.times()
        return t.user + t.system

    def cpu_percent(self) -> float:
        now, cpu = time.monotonic(), self._cpu_seconds()
        (then, cpu_then), self._last = self._last, (now, cpu)
        return max(0.0, 100.0 * (cpu - cpu_then) / max(now - then, 1e-6))

    @staticmethod
    def rss_mb() -> float:
        try:
            pages = int(Path("/proc/self/statm").read_text().split()[1])
        except (OSError, ValueError, IndexError):
            return 0.0
        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20

    def temp_c(self) -> float | None:
        try:
            return int(self._THERMAL.read_text().strip()) / 1000.0
        except (OSError, ValueError):
            return None
