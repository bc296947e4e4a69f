"""Secrets (the MQTT password) are never written in the YAML in clear.

The YAML names where the secret lives: ``{env: NAME}`` (an environment variable),
``{file: /path}`` (a file; one trailing newline is dropped) or ``{credential: NAME}``
(a systemd credential, ``$CREDENTIALS_DIRECTORY/NAME``, from ``LoadCredential=``).
The config only ever holds the reference; ``resolve_secret`` reads the value when the
connection is made, and its errors name the variable or file, never the content.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydantic import Field, model_validator

from agent.config.base import ConfigError, ConfigModel, ConfigProblem

__all__ = ["PLAIN_SECRET_MESSAGE", "SecretRef", "resolve_secret"]

PLAIN_SECRET_MESSAGE = (
    "a secret cannot be written in the YAML in clear; use {env: NAME}, {file: /path} or {credential: NAME}"
)


class SecretRef(ConfigModel):
    """Where a secret comes from: exactly one of ``env``, ``file``, ``credential``."""

    env: str | None = Field(default=None, description="Name of an environment variable holding the secret.")
    file: Path | None = Field(
        default=None,
        description="File holding the secret (one trailing newline is dropped); relative to the config file.",
    )
    credential: str | None = Field(
        default=None,
        description="Name of a systemd credential: the file $CREDENTIALS_DIRECTORY/NAME (LoadCredential=).",
    )

    @model_validator(mode="before")
    @classmethod
    def _no_plain_text(cls, data: Any) -> Any:
        if isinstance(data, str | int | float | bytes):
            raise ValueError(PLAIN_SECRET_MESSAGE)
        return data

    @model_validator(mode="after")
    def _exactly_one(self) -> SecretRef:
        given = [name for name in ("env", "file", "credential") if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError(
                f"give exactly one of env, file, credential (given: {', '.join(given) or 'none'})"
            )
        if self.env is not None and (not self.env or "=" in self.env or "\0" in self.env):
            raise ValueError("env must be a variable name")
        if self.credential is not None and (not self.credential or "/" in self.credential):
            raise ValueError("credential must be a plain name (no '/')")
        return self

    def describe(self) -> str:
        """Where the secret lives, for messages (never the value)."""
        if self.env is not None:
            return f"environment variable {self.env}"
        if self.file is not None:
            return f"file {self.file}"
        return f"systemd credential {self.credential}"


def _error(where: str, message: str) -> ConfigError:
    return ConfigError("", [ConfigProblem(where, message)])


def _read_secret_file(path: Path, where: str, what: str) -> str:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise _error(where, f"cannot read {what}: {exc.strerror or 'error'}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise _error(where, f"{what} is not UTF-8 text") from None
    return text[:-1] if text.endswith("\n") else text


def resolve_secret(ref: SecretRef, where: str = "secret") -> str:
    """Read the secret ``ref`` points to. ``where`` is the key path used in errors (e.g. ``mqtt.password``).

    Raises ConfigError naming the missing variable, file or credential. The returned value
    must not be logged.
    """
    if ref.env is not None:
        value = os.environ.get(ref.env)
        if value is None:
            raise _error(where, f"environment variable {ref.env} is not set")
    elif ref.file is not None:
        value = _read_secret_file(ref.file, where, f"secret file {ref.file}")
    else:
        directory = os.environ.get("CREDENTIALS_DIRECTORY")
        if not directory:
            message = (
                f"credential {ref.credential}: $CREDENTIALS_DIRECTORY is not set "
                "(not started by systemd with LoadCredential=?)"
            )
            raise _error(where, message)
        path = Path(directory) / str(ref.credential)
        value = _read_secret_file(path, where, f"credential {ref.credential} ({path})")
    if value == "":
        raise _error(where, f"{ref.describe()} is empty")
    return value
