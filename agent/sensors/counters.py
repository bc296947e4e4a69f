"""What a sensor group counts about its input, and a logger that says each kind of problem once per key."""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass

__all__ = ["ProblemLog", "SensorCounters"]


@dataclass
class SensorCounters:
    """Totals since start. Bad input is counted here and logged, never raised."""

    samples: int = 0  # accepted samples
    non_numeric: int = 0  # payload or field not a number
    nan: int = 0  # NaN or infinity
    missing_field: int = 0  # JSON without the configured field
    unknown_topic: int = 0  # a message on a subscribed filter naming no channel of the model
    late: int = 0  # older than rows already built (beyond max_delay_s): dropped
    clock_jumps: int = 0  # a sample more than max_clock_jump_s away from the stream's clock
    gaps: int = 0  # a channel silent longer than max_gap_s: the window restarted
    overflow: int = 0  # the sample queue was full (the worker fell behind): dropped
    reconnects: int = 0  # a serial port lost and opened again
    rows: int = 0  # resampled rows at the model's rate
    windows: int = 0  # inferences
    anomalous: int = 0  # windows over the threshold
    events: int = 0  # events raised

    def as_dict(self) -> dict[str, int]:
        return asdict(self)

    def count(self, kind: str) -> None:
        setattr(self, kind, getattr(self, kind) + 1)


class ProblemLog:
    """A warning the first time a (kind, key) happens, debug after: a broken sensor cannot flood the log."""

    def __init__(self, log: logging.Logger, group: str) -> None:
        self.log, self.group = log, group
        self._seen: set[tuple[str, str]] = set()

    def __call__(self, kind: str, key: str, message: str) -> None:
        first = (kind, key) not in self._seen
        self._seen.add((kind, key))
        level = logging.WARNING if first else logging.DEBUG
        suffix = " (further ones are counted in stats)" if first else ""
        self.log.log(level, "sensors %s: %s: %s%s", self.group, key, message, suffix)
