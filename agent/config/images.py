"""``images:``: the bounded local image store and the published JPEGs."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, WithJsonSchema

from agent.config.base import ConfigModel

__all__ = ["ByteCount", "ImagesConfig", "parse_bytes"]

_UNITS = {
    "": 1,
    "b": 1,
    "kb": 10**3,
    "mb": 10**6,
    "gb": 10**9,
    "tb": 10**12,
    "kib": 2**10,
    "mib": 2**20,
    "gib": 2**30,
    "tib": 2**40,
}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*$")


def parse_bytes(value: Any) -> Any:
    """``"500MB"`` -> 500_000_000, ``"2GiB"`` -> 2_147_483_648; ints pass through, other types are left
    for the int validator to reject."""
    if not isinstance(value, str):
        return value
    match = _SIZE.match(value.replace("_", ""))
    unit = match.group(2).lower() if match else None
    if match is None or unit not in _UNITS or len(match.group(1)) > 30:
        raise ValueError(
            "must be a number of bytes, or a size like 500MB or 2GiB (units: kB MB GB TB KiB MiB GiB TiB)"
        )
    return int(float(match.group(1)) * _UNITS[unit])


ByteCount = Annotated[
    int,
    BeforeValidator(parse_bytes),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "integer", "minimum": 1},
                {"type": "string", "pattern": r"^\s*\d+(\.\d+)?\s*([kKMGT]i?[bB]|[bB])?\s*$"},
            ]
        }
    ),
]


class ImagesConfig(ConfigModel):
    """Event images: kept on disk (oldest deleted first when a limit is hit) and published over MQTT."""

    dir: Path = Field(
        default=Path("/var/lib/inspect-agent/images"),
        description="Folder of the local image store; relative to the config file.",
    )
    max_count: int = Field(default=1000, ge=1, description="Most images kept on disk.")
    max_bytes: ByteCount = Field(
        default=500_000_000,
        ge=1,
        description='Most bytes kept on disk: an integer or a size like "500MB", "2GiB".',
    )
    max_age_days: float = Field(default=30.0, gt=0, description="Images older than this are deleted.")
    jpeg_quality: int = Field(default=85, ge=1, le=100, description="JPEG quality 1..100.")
    max_side: int = Field(
        default=1280,
        ge=16,
        description="Longest side in pixels of a published image (larger ones are scaled down).",
    )
    publish_raw: bool = Field(
        default=False, description="Also publish the raw (unannotated) frame of each event."
    )
