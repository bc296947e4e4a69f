"""Sensor samples from a serial port: one record per line, a JSON object or CSV cells (pyserial).

    {"ts": 1767225600.1, "temperature": 61.8, "pressure": 5.02}        format json (keys: `fields`)
    1767225600.1,61.8,5.02                                              format csv (names: `columns`)

Lines end with LF, CRLF or CR. A line that gives nothing usable is counted and logged like a bad MQTT
payload (the first line after opening is often cut: it is counted, not fatal). A mapping that can never
give the model's channels is refused when the group is built. When the port goes away (a USB adapter
unplugged, a cable pulled) the error is logged once, counted in ``reconnects`` and the port opened again
every ``reconnect_s`` until it is back; a port missing at start, or one that opens and fails at once, is
the same ongoing problem, logged once, so the agent comes up before the sensor does.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections.abc import Callable

import serial

from agent.config import SerialSourceConfig
from agent.sensors.counters import ProblemLog, SensorCounters
from agent.sensors.samples import BadPayload, Sample, parse_number, sample_time, samples_from_fields
from agent.status import ExitStatus, InspectError

__all__ = ["SerialSensorSource", "check_mapping", "samples_from_line"]

log = logging.getLogger("agent.sensors")

_MAX_LINE = 4096  # a line longer than this is noise on the wire (wrong baud rate), not a record
_LINE_END = re.compile(rb"\r\n|\r|\n")  # devices end lines with any of these


def samples_from_line(
    config: SerialSourceConfig, channels: list[str], line: bytes, arrival: float
) -> list[Sample]:
    """The samples one line carries; raises ``BadPayload`` when it carries none."""
    try:
        return _parse(config, channels, line, arrival)
    except (OverflowError, RecursionError):  # a 400-digit number, 4000 nested brackets: line noise
        raise BadPayload("non_numeric", "line is not a record (line noise?)") from None


def _parse(config: SerialSourceConfig, channels: list[str], line: bytes, arrival: float) -> list[Sample]:
    try:
        text = line.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise BadPayload("non_numeric", "line is not UTF-8 text (wrong baud rate?)") from None
    if config.format == "csv":
        cells = [cell.strip() for cell in text.split(",")]
        if len(cells) != len(config.columns):
            raise BadPayload("missing_field", f"{len(cells)} cells, expected {len(config.columns)}")
        row = dict(zip(config.columns, cells, strict=True))
        when = sample_time(row, config.time_field, arrival)
        return [Sample(ch, when, parse_number(row[ch], ch)) for ch in channels]  # names are not paths here
    try:
        document = json.loads(text)
    except ValueError:
        raise BadPayload("non_numeric", "line is not JSON") from None
    if not isinstance(document, dict):
        raise BadPayload("non_numeric", "line is not a JSON object")
    when = sample_time(document, config.time_field, arrival)
    return samples_from_fields(document, config.fields or {channel: channel for channel in channels}, when)


def check_mapping(group: str, config: SerialSourceConfig, channels: list[str]) -> None:
    """Refuse a mapping that can never give the model's channels (a typo would silently starve the group)."""
    problem = None
    if config.format == "csv" and (missing := [c for c in channels if c not in config.columns]):
        problem = f"columns {config.columns} lack the model's channels {missing}"
    elif config.format == "json" and config.fields:
        unknown = sorted(set(config.fields) - set(channels))
        missing = [c for c in channels if c not in config.fields]
        if unknown or missing:
            problem = f"fields {unknown} are not the model's channels {channels}" if unknown else ""
            problem += (" and " if unknown and missing else "") + (
                f"fields lack channels {missing}" if missing else ""
            )
    if problem:
        raise InspectError(f"sensors {group}: serial {problem}", ExitStatus.CONFIG)


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
        check_mapping(group, config, channels)
        self.group, self.config, self.channels = group, config, channels
        self.counters = counters
        self.on_sample = on_sample
        self.problem = ProblemLog(log, group)
        self.finished = False  # a live source never ends
        self.connected = False
        self._failing: str | None = None  # the problem being retried: logged once, until data flows again
        self._delivered = False  # a good line since the port was opened
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"sensors-{group}-serial", daemon=True)

    def start(self, _subscriber: object = None) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(2.0)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                port = serial.Serial(self.config.port, self.config.baudrate, timeout=0.5)
            except (serial.SerialException, OSError) as exc:
                self._retrying(_reason(exc))
                continue
            if self._failing is None:
                log.info(
                    "sensors %s: serial port %s open at %d baud", self.group, self.config.port, port.baudrate
                )
            self.connected, self._delivered = True, False
            try:
                self._read(port)
            except (serial.SerialException, OSError) as exc:
                self._lost(f"lost: {_reason(exc)}")
            except Exception as exc:  # a bug must not end the reader for good: log it, reopen, go on
                if self._failing != repr(exc):
                    log.exception("sensors %s: serial reader failed", self.group)
                self._lost(repr(exc))
            finally:
                self.connected = False
                port.close()

    def _lost(self, reason: str) -> None:
        if self._delivered:  # a port that opens and fails at once is one ongoing problem, not many losses
            self.counters.count("reconnects")
            self._failing = None
        self._retrying(reason)

    def _retrying(self, reason: str) -> None:
        if reason != self._failing:
            log.warning(
                "sensors %s: serial port %s: %s; retrying every %g s",
                self.group, self.config.port, reason, self.config.reconnect_s,
            )  # fmt: skip
            self._failing = reason
        self._stop.wait(self.config.reconnect_s)

    def _read(self, port: serial.Serial) -> None:
        pending = b""  # the start of a line not ended yet
        while not self._stop.is_set():
            chunk = port.read(port.in_waiting or 1)  # waits up to the timeout for the first byte
            if not chunk:
                continue
            *lines, pending = _LINE_END.split(pending + chunk)
            for line in lines:
                if line.strip():
                    self._take(line)
            if len(pending) > _MAX_LINE:
                self.counters.count("non_numeric")
                self.problem(
                    "non_numeric", self.config.port, f"no line end in {_MAX_LINE} bytes (wrong baud rate?)"
                )
                pending = b""

    def _take(self, line: bytes) -> None:
        try:
            samples = samples_from_line(self.config, self.channels, line, time.time())
        except BadPayload as exc:
            self.counters.count(exc.kind)
            self.problem(exc.kind, self.config.port, f"{exc}; line {line[:60]!r} ignored")
            return
        if not self._delivered:
            self._delivered = True
            if self._failing is not None:
                log.info("sensors %s: serial port %s delivers again", self.group, self.config.port)
                self._failing = None
        for sample in samples:
            self.on_sample(sample)


def _reason(exc: BaseException) -> str:
    return getattr(exc, "strerror", None) or str(exc)
