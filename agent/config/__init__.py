"""The agent's YAML configuration: one strict pydantic model per section, loaded by ``load_config``.

    from agent.config import load_config
    config = load_config(Path("/etc/inspect-agent/config.yaml"))   # AgentConfig, or raises ConfigError

Every option is documented in docs/config-reference.md (generated from these models by
scripts/gen_config_reference.py).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TextIO

from agent.config.base import ConfigError, ConfigModel, ConfigProblem
from agent.config.camera import CameraConfig, PresenceConfig, Roi, TriggerConfig, source_kind
from agent.config.decision import DecisionConfig
from agent.config.images import ImagesConfig, parse_bytes
from agent.config.loader import config_hash, load_config, parse_config, resolve_paths
from agent.config.logging import LoggingConfig
from agent.config.model import ModelConfig
from agent.config.mqtt import MqttConfig, TlsConfig
from agent.config.outbox import OutboxConfig
from agent.config.root import AgentConfig, default_device_id
from agent.config.secrets import SecretRef, resolve_secret
from agent.config.sensors import SensorGroupConfig, SerialSourceConfig, TopicMapping
from agent.modelcard import card_path_for
from agent.status import ExitStatus

__all__ = [
    "AgentConfig",
    "CameraConfig",
    "ConfigError",
    "ConfigModel",
    "ConfigProblem",
    "DecisionConfig",
    "ImagesConfig",
    "LoggingConfig",
    "ModelConfig",
    "MqttConfig",
    "OutboxConfig",
    "PresenceConfig",
    "Roi",
    "SecretRef",
    "SensorGroupConfig",
    "SerialSourceConfig",
    "TlsConfig",
    "TopicMapping",
    "TriggerConfig",
    "check_config_main",
    "config_hash",
    "default_device_id",
    "load_config",
    "parse_bytes",
    "parse_config",
    "resolve_paths",
    "resolve_secret",
    "runtime_warnings",
    "source_kind",
]


def runtime_warnings(config: AgentConfig) -> list[ConfigProblem]:
    """Things a valid config needs at run time that are missing on this machine (files, secrets)."""
    warnings = []
    files = {"model.path": config.model.path} if config.cameras else {}
    for group_id, group in config.sensors.items():
        files[f"sensors.{group_id}.model"] = group.model
        if group.source.csv is not None:
            files[f"sensors.{group_id}.source.csv.path"] = group.source.csv.path
    if config.mqtt.tls is not None:
        for name in ("ca_file", "cert_file", "key_file"):
            path = getattr(config.mqtt.tls, name)
            if path is not None:
                files[f"mqtt.tls.{name}"] = path
    for camera_id, camera in config.cameras.items():
        if camera.enabled and camera.source_kind == "path":
            files[f"cameras.{camera_id}.source"] = Path(camera.source)
    for key, path in files.items():
        if not path.exists():
            warnings.append(ConfigProblem(key, f"{path} does not exist"))
    models = {"model.path": config.model.path} if config.cameras else {}
    models.update({f"sensors.{g}.model": group.model for g, group in config.sensors.items()})
    for key, model in models.items():
        card = card_path_for(model)
        if model.exists() and not card.exists():
            warnings.append(ConfigProblem(key, f"model card {card} does not exist"))
    if config.mqtt.password is not None:
        try:
            resolve_secret(config.mqtt.password, "mqtt.password")  # the value is dropped at once
        except ConfigError as exc:
            warnings.extend(exc.problems)
    return warnings


def _table(rows: list[tuple[str, str, str, str]], out: TextIO) -> None:
    header = ("Line", "Key", "Value", "Message")
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(3)]
    for row in [header, *rows]:
        cells = [cell.ljust(width) for cell, width in zip(row[:3], widths, strict=True)]
        print("  ".join([*cells, row[3]]), file=out)


def check_config_main(path: Path, out: TextIO | None = None) -> int:
    """``inspect-agent check-config FILE``: validate without starting anything.

    Prints a Line/Key/Value/Message table of the problems, or ``OK: ...``, then warnings for
    files and secrets missing on this machine (they do not change the exit code). Returns
    0 when valid, 66 (NO_INPUT) when the file is missing or unreadable, 78 (CONFIG) when invalid.
    """
    out = out or sys.stdout
    try:
        config = load_config(path)
    except ConfigError as exc:
        count = len(exc.problems)
        print(f"{path}: {count} problem{'s' if count != 1 else ''}", file=out)
        rows = [
            (str(p.line) if p.line is not None else "-", p.path or "-", p.value or "-", p.message)
            for p in exc.problems
        ]
        _table(rows, out)
        return int(exc.status)
    cameras, groups = len(config.cameras), len(config.sensors)
    inspected = f"{cameras} camera{'s' if cameras != 1 else ''}"
    if groups:
        inspected += f", {groups} sensor group{'s' if groups != 1 else ''}"
    print(f"OK: {path} ({inspected}, config hash {config_hash(config)})", file=out)
    for warning in runtime_warnings(config):
        print(f"warning: {warning} (needed at run time)", file=out)
    return int(ExitStatus.OK)
