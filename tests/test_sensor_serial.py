"""Sensor samples from a serial port: line parsing, and the reader on a real pseudo-terminal (pyserial).

A pty pair stands in for the USB adapter: the test writes on the master side, the source opens the
slave's path as it would /dev/ttyUSB0. The port is reached through a symlink, as /dev/serial/by-id/...
links are: missing at start (the agent comes up before the sensor), then plugged in, then unplugged.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
import tty
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.config import SerialSourceConfig, parse_config
from agent.config.base import ConfigError
from agent.sensors.counters import SensorCounters
from agent.sensors.samples import BadPayload, Sample
from agent.sensors.source_serial import SerialSensorSource, samples_from_line
from agent.status import ExitStatus, InspectError
from tests.agent_harness import wait_until

CHANNELS = ["temperature", "pressure"]


def test_json_lines_use_the_channel_names_unless_fields_map_them() -> None:
    plain = SerialSourceConfig(port="/dev/null")
    line = b'{"ts": 1767225600.5, "temperature": 61.5, "pressure": 5, "extra": "x"}\n'
    assert samples_from_line(plain, CHANNELS, line, 1.0) == [
        Sample("temperature", 1767225600.5, 61.5),
        Sample("pressure", 1767225600.5, 5.0),
    ]
    mapped = SerialSourceConfig(
        port="/dev/null", fields={"temperature": "t.c", "pressure": "p"}, time_field=None
    )
    line = b'{"t": {"c": 20}, "p": 4.5, "ts": 5}\r\n'
    assert samples_from_line(mapped, CHANNELS, line, 7.0) == [
        Sample("temperature", 7.0, 20.0),  # time_field null: arrival time
        Sample("pressure", 7.0, 4.5),
    ]
    iso = b'{"ts": "2026-01-01T00:00:00Z", "temperature": 1, "pressure": 2}'
    assert samples_from_line(plain, CHANNELS, iso, 0.0)[0].t == 1767225600.0


def test_csv_lines_name_their_cells_by_columns() -> None:
    config = SerialSourceConfig(
        port="/dev/null", format="csv", columns=["ts", "pressure", "rpm", "temperature"]
    )
    assert samples_from_line(config, CHANNELS, b"100.5, 5.1, 1500, 60.2\n", 0.0) == [
        Sample("temperature", 100.5, 60.2),
        Sample("pressure", 100.5, 5.1),
    ]
    text = "sensors: {oven: {model: m.tflite, source: {serial: {port: /dev/ttyUSB0, format: csv}}}}"
    with pytest.raises(ConfigError, match=r"sensors\.oven\.source\.serial\.columns") as info:
        parse_config(text)
    assert "format csv needs the name of each cell" in str(info.value)


@pytest.mark.parametrize(
    ("config", "line", "kind", "message"),
    [
        ({}, b"\xff\xfe garbage\n", "non_numeric", "not UTF-8"),
        ({}, b"temperature=5\n", "non_numeric", "not JSON"),
        ({}, b"[1, 2]\n", "non_numeric", "not a JSON object"),
        ({}, b'{"temperature": 5}\n', "missing_field", "pressure"),
        ({}, b'{"temperature": "hot", "pressure": 1}\n', "non_numeric", "not a number"),
        ({}, b'{"temperature": NaN, "pressure": 1}\n', "nan", "nan"),
        ({"format": "csv", "columns": ["temperature", "pressure"]}, b"1,2,3\n", "missing_field", "3 cells"),
        ({}, b'{"temperature": 1' + b"0" * 400 + b', "pressure": 1}\n', "non_numeric", "not a record"),
        ({}, b"[" * 5000 + b"\n", "non_numeric", "not a record"),  # noise that recurses the JSON parser
    ],
)
def test_a_bad_line_names_its_problem_and_counter(
    config: dict[str, object], line: bytes, kind: str, message: str
) -> None:
    with pytest.raises(BadPayload, match=message) as info:
        samples_from_line(SerialSourceConfig(port="/dev/null", **config), CHANNELS, line, 0.0)  # type: ignore[arg-type]
    assert info.value.kind == kind


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (
            {"fields": {"temp": "t", "pressure": "p"}},
            r"fields \['temp'\] are not the model's channels .* and fields lack channels \['temperature'\]",
        ),
        ({"format": "csv", "columns": ["ts", "temperature"]}, r"lack the model's channels \['pressure'\]"),
    ],
)
def test_a_mapping_that_cannot_give_the_models_channels_is_refused(
    config: dict[str, object], message: str
) -> None:
    settings = SerialSourceConfig(port="/dev/null", **config)  # type: ignore[arg-type]
    with pytest.raises(InspectError, match=message) as info:
        SerialSensorSource("oven", settings, CHANNELS, SensorCounters(), print)
    assert info.value.status == ExitStatus.CONFIG


class Pty:
    """A pseudo-terminal pair; ``link`` is where the source looks for the port."""

    def __init__(self, link: Path) -> None:
        self.link = link
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)  # a serial line: no echo, no line editing (pyserial sets the same on open)
        self.path = os.ttyname(self.slave)

    def plug(self) -> None:
        self.link.symlink_to(self.path)

    def write(self, data: bytes) -> None:
        os.write(self.master, data)

    def unplug(self) -> None:
        self.link.unlink()
        os.close(self.slave)
        os.close(self.master)


@pytest.fixture
def port(tmp_path: Path) -> Iterator[Pty]:
    pty = Pty(tmp_path / "usb-sensor-port0")
    yield pty
    for fd in (pty.master, pty.slave):
        with contextlib.suppress(OSError):  # already closed by an unplug
            os.close(fd)


def test_the_reader_waits_for_the_port_reads_lines_counts_bad_ones_and_survives_an_unplug(
    port: Pty, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "agent.sensors")
    counters, samples = SensorCounters(), []
    config = SerialSourceConfig(port=str(port.link), baudrate=9600, reconnect_s=0.1)
    source = SerialSensorSource("oven", config, CHANNELS, counters, samples.append)
    source.start()
    try:
        time.sleep(0.5)  # several attempts on a missing port: one warning, no crash
        assert not source.connected
        missing = [
            r for r in caplog.records if "serial port" in r.getMessage() and "retrying" in r.getMessage()
        ]
        assert len(missing) == 1, [r.getMessage() for r in caplog.records]

        port.plug()
        assert wait_until(lambda: source.connected, 5), "the port was not opened once it appeared"
        port.write(b'{"ts": 10.0, "temperature": 60, "pressure": 5}\n')
        port.write(b'{"ts": 10.1, "temperature": 61,')  # one record in two writes, a pause between
        time.sleep(0.7)  # longer than the read timeout: the first half must wait for the rest
        port.write(b' "pressure": 5.5}\nnot json\n{"ts": 10.2, "temperature": 62, "pressure": 6}\r\n')
        port.write(b'{"ts": 10.3, "temperature": 63, "pressure": 6}\r')  # CR only, as some devices send
        port.write(b'{"ts": 10.4, "temperature": 64, "pressure": 6}\r\n')
        assert wait_until(lambda: len(samples) == 10, 5), samples
        assert [s.t for s in samples] == [10.0, 10.0, 10.1, 10.1, 10.2, 10.2, 10.3, 10.3, 10.4, 10.4]
        assert counters.non_numeric == 1

        port.unplug()  # the adapter is pulled: the read fails, the port is gone
        assert wait_until(lambda: counters.reconnects == 1 and not source.connected, 5), counters
        assert any("lost" in r.getMessage() for r in caplog.records)
        assert source._thread.is_alive(), "the reader keeps trying"

        again = Pty(port.link)  # plugged back in (a new tty behind the same by-id link)
        again.plug()
        try:
            assert wait_until(lambda: source.connected, 5)
            again.write(b'{"ts": 11.0, "temperature": 70, "pressure": 7}\n')
            assert wait_until(lambda: len(samples) == 12, 5), samples
        finally:
            source.stop()
            again.unplug()
    finally:
        source.stop()
    assert not source._thread.is_alive()
