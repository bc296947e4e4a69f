"""Commands received on ``<prefix>/<device>/cmd/<name>``: parse them, and build their replies.

``parse_command(name, payload)`` returns a typed command or raises ``CommandError`` with a one-line
message for the reply; it never raises anything else, whatever the bytes. Dispatching a command to
the pipeline is the caller's business; ``make_reply`` / ``error_reply`` build the ``Reply``.
"""

from __future__ import annotations

import json
import time
from typing import Any, ClassVar, cast

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from agent.messages import Reply, iso_ts

__all__ = [
    "COMMANDS",
    "Command",
    "CommandError",
    "Pause",
    "Reload",
    "Resume",
    "SetThreshold",
    "Snapshot",
    "error_reply",
    "make_reply",
    "parse_command",
]


class _Command(BaseModel):
    # strict: "0.5" is not a number and 1 is not a boolean; extra keys are refused.
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)
    name: ClassVar[str]

    request_id: str | None = Field(default=None, description="Echoed in the reply, to match the two.")


class Snapshot(_Command):
    """Publish the next frame's image (and its result) now."""

    name: ClassVar[str] = "snapshot"
    camera: str | None = Field(default=None, description="One camera id; all cameras when absent.")
    annotated: bool = Field(default=True, description="Annotated image (true) or the raw frame (false).")


class Pause(_Command):
    """Stop inspecting (frames are still read, so the camera stays warm)."""

    name: ClassVar[str] = "pause"
    camera: str | None = Field(default=None, description="One camera id; all cameras when absent.")


class Resume(_Command):
    """Undo pause."""

    name: ClassVar[str] = "resume"
    camera: str | None = Field(default=None, description="One camera id; all cameras when absent.")


class SetThreshold(_Command):
    """Change a decision threshold until the next restart or reload."""

    name: ClassVar[str] = "set_threshold"
    label: str = Field(default="defect", description="'defect' (the defect score) or a defect label.")
    value: float = Field(ge=0.0, le=1.0, allow_inf_nan=False, description="New threshold, 0..1.")
    camera: str | None = Field(default=None, description="One camera id; all cameras when absent.")


class Reload(_Command):
    """Re-read the configuration file (a bad file is rejected and the running config kept)."""

    name: ClassVar[str] = "reload"


Command = Snapshot | Pause | Resume | SetThreshold | Reload
COMMANDS: dict[str, type[_Command]] = {c.name: c for c in (Snapshot, Pause, Resume, SetThreshold, Reload)}


class CommandError(Exception):
    """A command that cannot be run; ``str(exc)`` is the one-line reply error."""

    def __init__(self, command: str, message: str, request_id: str | None = None) -> None:
        super().__init__(message)
        self.command = command
        self.request_id = request_id


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _explain(exc: ValidationError, model: type[_Command]) -> str:
    first = exc.errors()[0]
    where = ".".join(str(part) for part in first["loc"])
    if first["type"] == "extra_forbidden":
        allowed = ", ".join(sorted(model.model_fields))
        return f"unknown field {_short(where)} (allowed: {allowed})"
    if first["type"] == "missing":
        return f"missing required field {where!r}"
    message = first["msg"][0].lower() + first["msg"][1:]
    return f"field {where!r}: {message}, got {_short(first['input'])}"


def _load(payload: bytes) -> dict[str, Any] | str:
    """The payload as a JSON object, or why it is not one."""
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError:
        return "payload is not UTF-8 text"
    try:
        data = json.loads(text) if text.strip() else {}
    except json.JSONDecodeError as exc:
        return f"payload is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
    except (ValueError, RecursionError) as exc:  # nesting too deep, an integer too long
        return f"payload is not usable JSON: {type(exc).__name__}"
    if not isinstance(data, dict):
        return f"payload must be a JSON object, got {type(data).__name__}"
    return data


def parse_command(name: str, payload: bytes) -> Command:
    """Bytes from the broker -> a command; ``CommandError`` (one line) for anything unusable."""
    data = _load(payload)
    request_id = data.get("request_id") if isinstance(data, dict) else None
    request_id = request_id if isinstance(request_id, str) else None
    model = COMMANDS.get(name)
    if model is None:
        known = ", ".join(sorted(COMMANDS))
        raise CommandError(name[:64], f"unknown command {_short(name, 40)} (known: {known})", request_id)
    if isinstance(data, str):
        raise CommandError(name, data, request_id)
    try:
        return cast(Command, model.model_validate(data))
    except ValidationError as exc:
        raise CommandError(name, _explain(exc, model), request_id) from None


def make_reply(
    command: str,
    request_id: str | None = None,
    *,
    ok: bool = True,
    error: str | None = None,
    result: dict[str, Any] | None = None,
    wall_time: float | None = None,
) -> Reply:
    """The reply to publish on ``cmd/<command>/reply``."""
    when = time.time() if wall_time is None else wall_time
    return Reply(request_id=request_id, command=command, ok=ok, error=error, result=result, ts=iso_ts(when))


def error_reply(exc: CommandError, wall_time: float | None = None) -> Reply:
    """The reply for a command that could not be parsed."""
    return make_reply(exc.command, exc.request_id, ok=False, error=str(exc), wall_time=wall_time)
