"""``logging:``: log level and format (the journal adds timestamps under systemd)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator

from agent.config.base import ConfigModel

__all__ = ["LoggingConfig"]


class LoggingConfig(ConfigModel):
    """What the agent writes to stderr (journald under systemd)."""

    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        default="INFO", description="Lowest level logged (case-insensitive)."
    )
    format: Literal["text", "json"] = Field(
        default="text", description="text lines, or one JSON object per line."
    )

    @field_validator("level", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value
