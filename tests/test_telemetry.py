"""Telemetry: latency percentiles per interval, bounded samples, process CPU/RSS/temperature readings."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from agent.telemetry import LatencyRecorder, ProcessMeter


@pytest.mark.parametrize(
    ("samples", "p50", "p99"),
    [
        ([5.0], 5.0, 5.0),  # one sample is every percentile
        ([float(n) for n in range(1, 102)], 51.0, 100.0),  # 1..101: linear interpolation lands on samples
        ([1.0, 2.0, 3.0, 4.0], 2.5, 3.97),  # even count: the median between the middle two
        ([10.0] * 99 + [1000.0], 10.0, 10.0 + 0.01 * 990),  # one outlier only moves p99
    ],
)
def test_percentiles(samples: list[float], p50: float, p99: float) -> None:
    recorder = LatencyRecorder()
    for ms in reversed(samples):  # order does not matter
        recorder.add("model", ms)
    assert recorder.take() == {"model": (pytest.approx(p50), pytest.approx(p99), len(samples))}


def test_take_resets_and_keeps_stages_apart() -> None:
    recorder = LatencyRecorder()
    recorder.add("model", 10.0)
    recorder.add("trigger", 1.0)
    recorder.add("trigger", 3.0)
    assert recorder.take() == {"model": (10.0, 10.0, 1), "trigger": (2.0, pytest.approx(2.98), 2)}
    assert recorder.take() == {}  # a new interval
    recorder.add("model", 7.0)
    assert recorder.take() == {"model": (7.0, 7.0, 1)}


def test_samples_are_capped_per_stage() -> None:
    recorder = LatencyRecorder(max_samples=5)
    for n in range(20):
        recorder.add("model", float(n))
        recorder.add("publish", 1.0)
    taken = recorder.take()
    assert taken["model"] == (2.0, pytest.approx(3.96), 5)  # the first five kept: 0..4
    assert taken["publish"][2] == 5
    recorder.add("model", 100.0)  # the cap is per interval
    assert recorder.take()["model"][2] == 1


def test_process_meter_readings() -> None:
    meter = ProcessMeter()
    assert meter.rss_mb() > 1.0  # a Python process with numpy loaded
    deadline = os.times().user + 0.05
    x = 0
    for n in range(50_000_000):  # bounded: stops after ~50 ms of user CPU
        x += n * n
        if n % 10_000 == 0 and os.times().user >= deadline:
            break
    cpu = meter.cpu_percent()
    assert cpu > 0.0
    assert meter.cpu_percent() >= 0.0  # the next interval starts where the last ended
    temp = meter.temp_c()
    assert temp is None or isinstance(temp, float)


def test_temperature_unreadable_is_none(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    meter = ProcessMeter()
    monkeypatch.setattr(ProcessMeter, "_THERMAL", tmp_path / "missing")
    assert meter.temp_c() is None
    (tmp_path / "garbage").write_text("hot\n")
    monkeypatch.setattr(ProcessMeter, "_THERMAL", tmp_path / "garbage")
    assert meter.temp_c() is None
    (tmp_path / "temp").write_text("48312\n")
    monkeypatch.setattr(ProcessMeter, "_THERMAL", tmp_path / "temp")
    assert meter.temp_c() == pytest.approx(48.312)


def test_cpu_percent_is_never_negative_with_an_idle_interval() -> None:
    meter = ProcessMeter()
    time.sleep(0.01)
    assert meter.cpu_percent() >= 0.0
