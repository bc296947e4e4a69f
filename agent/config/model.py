"""``model:``: which TFLite model to run and how."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator

from agent.config.base import ConfigModel

__all__ = ["DEFAULT_MODEL_PATH", "ModelConfig"]

DEFAULT_MODEL_PATH = Path("/var/lib/inspect-agent/models/model.tflite")


class ModelConfig(ConfigModel):
    """The model bundle: a .tflite file and its model card (same name, .json) beside it."""

    path: Path = Field(
        default=DEFAULT_MODEL_PATH,
        description="The .tflite file; its model card is the .json file of the same name beside it. "
        "Relative to the config file.",
    )

    @field_validator("path")
    @classmethod
    def _tflite(cls, value: Path) -> Path:
        if value.suffix != ".tflite":
            raise ValueError(f"must be a .tflite file (its .json model card beside it), got {value.name!r}")
        return value

    threads: int | None = Field(
        default=None, ge=1, description="Interpreter threads; null = all cores (os.cpu_count())."
    )
