"""Device side, no broker: payload parsing, resampling (late, out of order, gaps, clock jumps), the ring."""

from __future__ import annotations

import numpy as np
import pytest

from agent.config import TopicMapping
from agent.sensors import Resampler, Row, Sample, SensorCounters, WindowRing
from agent.sensors.samples import BadPayload
from agent.sensors.source_mqtt import samples_from_payload

T0 = 1_767_225_600.0  # 2026-01-01, on the 10 Hz grid


def _stream(resampler: Resampler, samples: list[Sample]) -> list[Row]:
    rows: list[Row] = []
    for sample in samples:
        rows += resampler.add(sample)
    return rows


def _regular(channels: list[str], seconds: float, rate: float = 10.0, offset: float = 0.0) -> list[Sample]:
    return [
        Sample(ch, T0 + offset + i / rate, float(i) + 100 * c)
        for i in range(int(seconds * rate))
        for c, ch in enumerate(channels)
    ]


@pytest.mark.parametrize(
    ("mapping", "topic", "payload", "expected"),
    [
        ({"topic": "a/t", "channel": "temp"}, "a/t", b"21.5", [("temp", 1000.0, 21.5)]),  # plain number
        ({"topic": "a/t", "channel": "temp"}, "a/t", b'{"value": 2, "ts": 5}', [("temp", 5.0, 2.0)]),
        ({"topic": "a/t", "channel": "temp"}, "a/t", b'{"value": 2, "ts": 5e12}', [("temp", 5e9, 2.0)]),  # ms
        ({"topic": "a/t", "channel": "t", "field": "m.v"}, "a/t", b'{"m": {"v": 3}}', [("t", 1000.0, 3.0)]),
        ({"topic": "a/+"}, "a/speed", b"1500", [("speed", 1000.0, 1500.0)]),  # channel from the topic
        (
            {"topic": "a/all", "fields": {"p": "press", "s": "rpm"}},
            "a/all",
            b'{"press": 5.1, "rpm": 1500, "ts": "2026-01-01T00:00:00Z"}',
            [("p", T0, 5.1), ("s", T0, 1500.0)],
        ),
    ],
)
def test_payloads_become_samples(
    mapping: dict[str, object], topic: str, payload: bytes, expected: list[tuple[str, float, float]]
) -> None:
    samples = samples_from_payload(TopicMapping.model_validate(mapping), topic, payload, arrival=1000.0)
    assert [(s.channel, s.t, s.value) for s in samples] == expected


@pytest.mark.parametrize(
    ("payload", "kind"),
    [
        (b"abc", "non_numeric"),
        (b"NaN", "nan"),
        (b'{"value": "warm"}', "non_numeric"),
        (b'{"value": null}', "non_numeric"),
        (b'{"value": Infinity}', "nan"),
        (b'{"other": 1}', "missing_field"),
        (b"\xff\xfe", "non_numeric"),
        (b"true", "non_numeric"),
    ],
)
def test_bad_payloads_say_which_counter(payload: bytes, kind: str) -> None:
    with pytest.raises(BadPayload) as caught:
        samples_from_payload(TopicMapping(topic="a/t", channel="temp"), "a/t", payload, arrival=1.0)
    assert caught.value.kind == kind


def test_regular_stream_gives_one_row_per_grid_step_with_interpolation() -> None:
    counters = SensorCounters()
    resampler = Resampler(["a", "b"], 10.0, counters, max_delay_s=0.2)
    # b is sampled 30 ms after a: its value on the grid is interpolated between its neighbours
    b = [Sample("b", T0 + 0.03 + i / 10, 10.0 * i) for i in range(50)]
    rows = _stream(resampler, sorted(_regular(["a"], 5) + b, key=lambda s: s.t))
    rows += resampler.flush()
    assert len(rows) == 50 and counters.rows == 50 and counters.gaps == 0
    assert rows[0].restart and not any(r.restart for r in rows[1:])
    assert [round(r.t - T0, 6) for r in rows[:3]] == [0.0, 0.1, 0.2]
    assert rows[10].values[0] == pytest.approx(10.0)
    assert rows[10].values[1] == pytest.approx(97.0, abs=1e-3)  # 70 % from b(0.93)=90 to b(1.03)=100


def test_out_of_order_within_the_delay_is_used_later_than_that_is_dropped() -> None:
    counters = SensorCounters()
    resampler = Resampler(["a"], 10.0, counters, max_delay_s=0.5)
    samples = _regular(["a"], 3)
    samples[10], samples[12] = samples[12], samples[10]  # 0.2 s out of order: within the delay
    rows = _stream(resampler, samples)
    assert [float(r.values[0]) for r in rows] == pytest.approx([float(i) for i in range(len(rows))], abs=1e-3)
    rows_before = counters.rows
    late = resampler.add(Sample("a", T0 + 0.5, -1.0))  # rows up to ~2.4 s are built: too late
    assert late == [] and counters.late == 1 and counters.rows == rows_before


def test_a_gap_makes_no_row_and_restarts_the_window() -> None:
    counters = SensorCounters()
    resampler = Resampler(["a", "b"], 10.0, counters, max_gap_s=0.5, max_delay_s=0.2)
    samples = [s for s in _regular(["a", "b"], 6) if not (s.channel == "b" and 2.0 <= s.t - T0 < 3.5)]
    rows = _stream(resampler, samples)
    times = [round(r.t - T0, 1) for r in rows]
    assert counters.gaps == 1
    assert not any(2.5 < x < 3.0 for x in times), "rows were made up inside the gap"
    restarted = [round(r.t - T0, 1) for r in rows if r.restart]
    assert restarted[0] == 0.0 and len(restarted) == 2 and 3.0 <= restarted[1] <= 3.5


def test_a_clock_jump_restarts_at_the_new_time() -> None:
    counters = SensorCounters()
    resampler = Resampler(["a"], 10.0, counters, max_delay_s=0.2, max_clock_jump_s=60)
    rows = _stream(resampler, _regular(["a"], 2))
    rows += _stream(resampler, _regular(["a"], 2, offset=3600.0))  # the PLC clock moved an hour ahead
    assert counters.clock_jumps == 1 and counters.late == 0
    after = [r for r in rows if r.t > T0 + 3000]
    assert after and after[0].restart and round(after[0].t - T0, 1) == 3600.0


def test_ring_returns_the_last_rows_oldest_first_and_counts_the_stride() -> None:
    ring = WindowRing(4, 2)
    for i in range(6):
        ring.push(float(i), np.array([i, -i], np.float32))
    assert ring.full and ring.since_window == 6
    times, values = ring.window()
    assert list(times) == [2.0, 3.0, 4.0, 5.0] and list(values[:, 1]) == [-2, -3, -4, -5]
    assert ring.since_window == 0
    ring.reset()
    assert not ring.full
