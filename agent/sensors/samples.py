"""A sensor sample, and reading one from an MQTT payload (a plain number, or JSON with named fields)."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

__all__ = [
    "BadPayload",
    "Sample",
    "parse_number",
    "parse_time",
    "pick_field",
    "sample_time",
    "samples_from_fields",
]


@dataclass(frozen=True)
class Sample:
    channel: str
    t: float  # seconds since the epoch (the sample's own time, or its arrival time)
    value: float


class BadPayload(ValueError):
    """A payload that gives no usable sample; ``kind`` is the counter it goes to."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


def parse_number(value: Any, what: str) -> float:
    """A finite float from a JSON value or text; NaN/inf and non-numbers raise ``BadPayload``."""
    if isinstance(value, bool) or value is None:
        raise BadPayload("non_numeric", f"{what} is {value!r}, not a number")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise BadPayload("non_numeric", f"{what} is {str(value)[:40]!r}, not a number") from None
    if not math.isfinite(number):
        raise BadPayload("nan", f"{what} is {number}")
    return number


def parse_time(value: Any) -> float:
    """Epoch seconds (a number; milliseconds when > 1e11) or ISO 8601 text -> epoch seconds."""
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
        except ValueError:
            pass
    number = parse_number(value, "time")
    return number / 1000.0 if number > 1e11 else number


def sample_time(record: dict[str, Any], time_field: str | None, arrival: float) -> float:
    """The record's own time (``time_field``), or its arrival time when it has none."""
    if time_field and record.get(time_field) is not None:
        return parse_time(record[time_field])
    return arrival


def samples_from_fields(record: dict[str, Any], fields: dict[str, str], when: float) -> list[Sample]:
    """One sample per ``channel -> key`` (dots for nesting); a missing or bad value raises ``BadPayload``."""
    return [
        Sample(channel, when, parse_number(pick_field(record, key), key)) for channel, key in fields.items()
    ]


def pick_field(document: Any, path: str) -> Any:
    """``a.b`` -> document["a"]["b"]; a missing key raises ``BadPayload``."""
    value = document
    for key in path.split("."):
        if not isinstance(value, dict) or key not in value:
            raise BadPayload("missing_field", f"no field {path!r}")
        value = value[key]
    return value


def decode(payload: bytes) -> Any:
    """JSON when it parses, else the text (a plain number such as ``21.5``)."""
    try:
        text = payload.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise BadPayload("non_numeric", "payload is not UTF-8 text") from None
    try:
        return json.loads(text)
    except ValueError:
        return text
