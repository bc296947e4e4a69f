"""Load the YAML file into an ``AgentConfig``, or raise one ``ConfigError`` listing every problem.

Loading is a pure function of the file's text and directory: it returns a new frozen config
or raises, so a reload can try a changed file and keep the running config when it is bad.
Relative paths in the file (model.path, images.dir, camera sources that are files or
folders, TLS files, secret files) are resolved against the YAML file's directory, not the
working directory.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from agent.config.base import ConfigError, ConfigModel, ConfigProblem
from agent.config.camera import CameraConfig
from agent.config.errors import problems_from_validation
from agent.config.root import AgentConfig
from agent.config.yamlfile import read_yaml
from agent.status import ExitStatus

__all__ = ["config_hash", "load_config", "parse_config", "resolve_paths"]

log = logging.getLogger(__name__)

MINIMAL_EXAMPLE = "model: {path: models/demo.tflite} and cameras: {line1: {source: line.avi}}"
M = TypeVar("M", bound=BaseModel)


def load_config(path: Path) -> AgentConfig:
    """Read, validate and resolve the config file at ``path``.

    Raises ConfigError: status NO_INPUT (66) when the file is missing or unreadable,
    CONFIG (78) when it is not a valid config.
    """
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(source, [ConfigProblem("", "file not found")], ExitStatus.NO_INPUT) from None
    except IsADirectoryError:
        raise ConfigError(
            source, [ConfigProblem("", "is a directory, not a file")], ExitStatus.NO_INPUT
        ) from None
    except UnicodeDecodeError as exc:
        problem = ConfigProblem("", f"not UTF-8 text (byte offset {exc.start})")
        raise ConfigError(source, [problem]) from None
    except OSError as exc:
        problem = ConfigProblem("", f"cannot read: {exc.strerror or exc}")
        raise ConfigError(source, [problem], ExitStatus.NO_INPUT) from None
    return parse_config(text, source, base_dir=Path(os.path.abspath(path)).parent)


def parse_config(text: str, source: str = "<string>", *, base_dir: Path | None = None) -> AgentConfig:
    """Validate YAML text. With ``base_dir``, relative paths are resolved against it; without, they are
    left as written (relative to the working directory)."""
    document = read_yaml(text, source)
    data = document.data
    if data is None:
        message = f"the file is empty; the smallest config is {MINIMAL_EXAMPLE}"
        raise ConfigError(source, [ConfigProblem("", message)])
    if not isinstance(data, dict):
        kind = "a list" if isinstance(data, list) else "a single value"
        message = f"the top level must be a mapping of sections (model:, cameras:, ...), got {kind}"
        raise ConfigError(source, [ConfigProblem("", message, line=document.line_of(()))])
    problems = list(document.duplicates)
    try:
        config = AgentConfig.model_validate(data)
    except ValidationError as exc:
        problems.extend(problems_from_validation(exc, AgentConfig, document))
        raise ConfigError(source, problems) from None
    if problems:
        raise ConfigError(source, problems)
    if base_dir is not None:
        config = resolve_paths(config, base_dir)
    log.debug("config %s: %d camera(s), hash %s", source, len(config.cameras), config_hash(config))
    return config


def resolve_paths(model: M, base_dir: Path) -> M:
    """A copy of ``model`` with every relative path (and camera file/folder source) joined to ``base_dir``."""
    update: dict[str, Any] = {}
    for name in type(model).model_fields:
        value = getattr(model, name)
        new = _resolve_value(value, base_dir)
        if new is not value:
            update[name] = new
    if isinstance(model, CameraConfig) and model.source_kind == "path":
        source = Path(model.source)
        if not source.is_absolute():
            update["source"] = str(base_dir / source)
    return model.model_copy(update=update) if update else model


def _resolve_value(value: Any, base_dir: Path) -> Any:
    if isinstance(value, Path):
        return value if value.is_absolute() else base_dir / value
    if isinstance(value, ConfigModel):
        return resolve_paths(value, base_dir)
    if isinstance(value, dict) and any(isinstance(item, ConfigModel) for item in value.values()):
        return {key: _resolve_value(item, base_dir) for key, item in value.items()}
    return value


def config_hash(config: AgentConfig) -> str:
    """First 12 hex digits of the sha256 of the config's canonical JSON (sorted keys).

    Published in the MQTT ``state`` message so a fleet can see which config each device runs."""
    canonical = json.dumps(config.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:12]
