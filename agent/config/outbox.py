"""``outbox:``: the durable SQLite store-and-forward queue for events and their images."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from agent.config.base import ConfigModel
from agent.config.images import ByteCount

__all__ = ["OutboxConfig"]


class OutboxConfig(ConfigModel):
    """Events and images are stored here before publishing and deleted on the broker's ack (docs/mqtt.md)."""

    path: Path | None = Field(
        default=None,
        description="SQLite file of the outbox; relative to the config file. null: `outbox.sqlite3` in the "
        "folder that holds `images.dir` (by default /var/lib/inspect-agent/outbox.sqlite3).",
        json_schema_extra={"default_text": "outbox.sqlite3 beside images.dir"},
    )
    max_count: int = Field(default=10000, ge=1, description="Most messages (events + images) kept.")
    max_bytes: ByteCount = Field(
        default=200_000_000,
        ge=1,
        description='Most payload bytes kept: an integer or a size like "200MB", "1GiB".',
    )
    fsync: Literal["normal", "full"] = Field(
        default="normal",
        description="normal: survives a crash or kill of the agent, a power cut may lose the last "
        "events; full: also survives a power cut, one fsync per message (see docs/mqtt.md).",
    )
