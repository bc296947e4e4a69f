"""The base model for every config section, and the error the loader raises.

Every section is strict (unknown keys are rejected, not ignored) and frozen: a loaded
config is a value, and a reload builds a new one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, WithJsonSchema

from agent.status import ExitStatus, InspectError

__all__ = ["ID_PATTERN", "ConfigError", "ConfigModel", "ConfigProblem", "FieldError", "Identifier"]

ID_PATTERN = r"^[A-Za-z0-9_-]+$"


class ConfigModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FieldError(ValueError):
    """Raised by a section's cross-field rule to blame one field of that section (the loader
    appends ``field`` to the error's key path), e.g. ``mqtt.tls.key_file``."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def _check_identifier(value: str) -> str:
    if not re.fullmatch(ID_PATTERN, value):
        raise ValueError("may only contain letters, digits, '_' and '-', and must not be empty")
    return value


Identifier = Annotated[
    str,
    AfterValidator(_check_identifier),
    WithJsonSchema({"type": "string", "pattern": ID_PATTERN}),
]


@dataclass(frozen=True)
class ConfigProblem:
    """One thing wrong with a config file.

    ``path`` is the dotted key path (empty for the whole file), ``value`` the offending
    value already rendered for display (``<redacted>`` for secrets, None when there is no
    value, e.g. a missing key) and ``line`` (``column`` for syntax errors) the 1-based position in
    the YAML file, when known.
    """

    path: str
    message: str
    value: str | None = None
    line: int | None = None
    column: int | None = None

    def __str__(self) -> str:
        where = f"{self.path}: " if self.path else ""
        details = []
        if self.value is not None:
            details.append(f"got {self.value}")
        if self.line is not None:
            details.append(
                f"line {self.line}" + (f", column {self.column}" if self.column is not None else "")
            )
        suffix = f" ({'; '.join(details)})" if details else ""
        return f"{where}{self.message}{suffix}"


class ConfigError(InspectError):
    """The configuration is unusable. ``problems`` lists every problem found, not just the first."""

    def __init__(
        self, source: str, problems: list[ConfigProblem], status: ExitStatus = ExitStatus.CONFIG
    ) -> None:
        self.source = source
        self.problems = list(problems)
        count = len(self.problems)
        prefix = f"{source}: " if source else ""
        if count == 1:
            message = f"{prefix}{self.problems[0]}"
        else:
            lines = "\n".join(f"  {problem}" for problem in self.problems)
            message = f"{prefix}{count} problems\n{lines}"
        super().__init__(message, status)
