"""Sensor samples from a serial port: one record per line, a JSON object or CSV cells (pyserial).

    {"ts": 1767225600.1, "temperature": 61.8, "pressure": 5.02}        format json (keys: `fields`)
    1767225600.1,61.8,5.02                                              format csv (names: `columns`)

A line that gives nothing usable is counted and logged like a bad MQTT payload (the first line after
opening is often cut: it is counted, not fatal). When the port goes away (a USB adapter unplugged, a cable
pulled) the error is logged once, counted in ``reconnects`` and the port opened again every
``reconnect_s`` until it is back; a port missing at start is treated the same way, so the agent comes up
before the sensor does.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable

import serial

from agent.config import SerialSourceConfig
from agent.sensors.counters import ProblemLog, SensorCounters
from agent.sensors.samples import BadPayload, Sample, parse_number, parse_time, pick_field

__all__ = ["SerialSensorSource", "samples_from_line"]

log = logging.getLogger("agent.sensors")

_MAX_LINE = 4096  # a line longer than this is noise on the wire (wrong baud rate), not a record


def samples_from_line(
    config: SerialSourceConfig, channels: list[str], line: bytes, arrival: float
) -> list[Sample]:
    """The samples one line carries; raises ``BadPayload`` when it carries none."""
    try:
        text = line.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise BadPayload("non_numeric", "line is not UTF-8 text (wrong baud rate?)") from None
    if config.format == "csv":
        cells = [cell.strip() for cell in text.split(",")]
        if len(cells) != len(config.columns):
            raise BadPayload("missing_field", f"{len(cells)} cells, expected {len(config.columns)}")
        row = dict(zip(config.columns, cells, strict=True))
        when = arrival
        if config.time_field and config.time_field in row:
            when = parse_time(row[config.time_field])
        return [Sample(ch, when, parse_number(row[ch], ch)) for ch in channels if ch in row]
    try:
        document = json.loads(text)
    except ValueError:
        raise BadPayload("non_numeric", "line is not JSON") from None
    if not isinstance(document, dict):
        raise BadPayload("non_numeric", "line is not a JSON object")
    when = arrival
    if config.time_field and document.get(config.time_field) is not None:
        when = parse_time(document[config.time_field])
    keys = config.fields or {channel: channel for channel in channels}
    return [Sample(ch, when, parse_number(pick_field(document, key), key)) for ch, key in keys.items()]


class SerialSensorSource:
    """Reads lines on its own thread (``sensors-<group>-serial``); every good sample goes to ``on_sample``."""

    def __init__(
        self,
        group: str,
        config: SerialSourceConfig,
        channels: list[str],
        counters: SensorCounters,
        on_sample: Callable[[Sample], None],
    ) -> None:
        self.group, self.config, self.channels = group, config, channels
        self.counters = counters
        self.on_sample = on_sample
        self.problem = ProblemLog(log, group)
        self.finished = False  # a live source never ends
        self.connected = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"sensors-{group}-serial", daemon=True)
        unknown = sorted(set(config.fields) - set(channels))
        if unknown:
            log.warning("sensors %s: fields %s are not channels of the model %s", group, unknown, channels)

    def start(self, _subscriber: object = None) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(2.0)

    def _run(self) -> None:
        failing: str | None = None  # the error being retried, logged once
        while not self._stop.is_set():
            try:
                port = serial.Serial(self.config.port, self.config.baudrate, timeout=0.5)
            except (serial.SerialException, OSError) as exc:
                if failing is None:
                    log.warning(
                        "sensors %s: serial port %s: %s; retrying every %g s",
                        self.group, self.config.port, _reason(exc), self.config.reconnect_s,
                    )  # fmt: skip
                failing = str(exc)
                self._stop.wait(self.config.reconnect_s)
                continue
            log.info(
                "sensors %s: serial port %s open at %d baud", self.group, self.config.port, port.baudrate
            )
            failing = None
            self.connected = True
            try:
                self._read(port)
            except (serial.SerialException, OSError) as exc:
                self.counters.count("reconnects")
                log.warning(
                    "sensors %s: serial port %s lost: %s; retrying every %g s",
                    self.group, self.config.port, _reason(exc), self.config.reconnect_s,
                )  # fmt: skip
                failing = str(exc)
                self._stop.wait(self.config.reconnect_s)
            finally:
                self.connected = False
                port.close()

    def _read(self, port: serial.Serial) -> None:
        pending = b""  # a line that the read timeout cut
        while not self._stop.is_set():
            pending += port.readline(_MAX_LINE - len(pending))
            if not pending.endswith(b"\n") and len(pending) < _MAX_LINE:
                continue  # timeout: check the stop flag, keep what came
            line, pending = pending, b""
            try:
                samples = samples_from_line(self.config, self.channels, line, time.time())
            except BadPayload as exc:
                self.counters.count(exc.kind)
                self.problem(exc.kind, self.config.port, f"{exc}; line {line[:60]!r} ignored")
                continue
            for sample in samples:
                self.on_sample(sample)


def _reason(exc: BaseException) -> str:
    return getattr(exc, "strerror", None) or str(exc)
