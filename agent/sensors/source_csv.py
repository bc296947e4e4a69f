"""Replay of a recorded CSV (``t`` in seconds, one column per channel) as live samples: tests and demos.

Sample times are the replay's start time plus ``t``, so events carry times that map back to the file
(``t = event time - started``). ``speed`` 1 paces in real time, 10 ten times faster, 0 as fast as the
worker takes them. Cells that are empty or not numbers are counted like bad MQTT payloads.
"""

from __future__ import annotations

import csv
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from agent.sensors.counters import ProblemLog, SensorCounters
from agent.sensors.samples import BadPayload, Sample, parse_number
from agent.status import ExitStatus, InspectError

__all__ = ["CsvReplaySource"]

log = logging.getLogger("agent.sensors")


class CsvReplaySource:
    def __init__(
        self,
        group: str,
        path: Path,
        channels: list[str],
        speed: float,
        loop: bool,
        counters: SensorCounters,
        on_sample: Callable[[Sample], None],
        on_end: Callable[[], None] | None = None,
    ) -> None:
        self.on_end = on_end
        self.group, self.path, self.speed, self.loop = group, path, speed, loop
        self.channels = channels
        self.counters = counters
        self.on_sample = on_sample
        self.problem = ProblemLog(log, group)
        self.started = 0.0  # wall time of t = 0
        self.finished = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"sensors-{group}-csv", daemon=True)
        with self._open() as handle:
            header = next(csv.reader(handle), [])
        missing = [c for c in channels if c not in header]
        if "t" not in header or missing:
            raise InspectError(
                f"{path}: needs a t column and the model's channels; missing {missing or ['t']}",
                ExitStatus.DATA_ERROR,
            )

    def _open(self) -> TextIO:
        try:
            return self.path.open(newline="")
        except OSError as exc:
            raise InspectError(f"sensor CSV {self.path}: {exc.strerror}", ExitStatus.NO_INPUT) from exc

    def start(self, _subscriber: object = None) -> None:
        self.started = time.time()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(2.0)

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                self._replay_once()
                if not self.loop:
                    break
                self.started = time.time()
        except Exception:
            log.exception("sensors %s: CSV replay of %s failed", self.group, self.path)
        finally:
            self.finished = True
            if self.on_end is not None:
                self.on_end()

    def _replay_once(self) -> None:
        paced_from = time.monotonic()
        with self._open() as handle:
            for line, row in enumerate(csv.DictReader(handle), start=2):
                if self._stop.is_set():
                    return
                try:
                    t = parse_number(row.get("t"), "t")
                except BadPayload as exc:
                    self.counters.count(exc.kind)
                    self.problem(exc.kind, f"{self.path.name}:{line}", str(exc))
                    continue
                if self.speed > 0:
                    delay = paced_from + t / self.speed - time.monotonic()
                    if delay > 0 and self._stop.wait(delay):
                        return
                for channel in self.channels:
                    try:
                        value = parse_number(row.get(channel), channel)
                    except BadPayload as exc:
                        self.counters.count(exc.kind)
                        self.problem(exc.kind, f"{self.path.name}:{line}", str(exc))
                        continue
                    self.on_sample(Sample(channel, self.started + t, value))
