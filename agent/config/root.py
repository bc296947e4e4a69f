"""``AgentConfig``: the whole YAML file, and the defaults filled in from other keys."""

from __future__ import annotations

import re
import socket
from typing import Any

from pydantic import Field, ModelWrapValidatorHandler, field_validator, model_validator

from agent.config.base import ConfigModel, FieldError, Identifier
from agent.config.camera import CameraConfig
from agent.config.decision import DecisionConfig
from agent.config.images import ImagesConfig
from agent.config.logging import LoggingConfig
from agent.config.model import ModelConfig
from agent.config.mqtt import MqttConfig
from agent.config.outbox import OutboxConfig
from agent.config.sensors import SensorGroupConfig

__all__ = ["AgentConfig", "default_device_id"]


def default_device_id() -> str:
    """The host name with every character outside [A-Za-z0-9_-] replaced by '-'."""
    name = re.sub(r"[^A-Za-z0-9_-]", "-", socket.gethostname()).strip("-")
    return name or "inspect-agent"


class AgentConfig(ConfigModel):
    """The agent's configuration file."""

    device_id: Identifier = Field(
        default_factory=default_device_id,
        description="This device's id in MQTT topics; letters, digits, '_' and '-'. Default: the host name "
        "with other characters replaced by '-'.",
        json_schema_extra={"default_text": "the host name, sanitised"},
    )
    mqtt: MqttConfig = Field(default_factory=MqttConfig, description="The MQTT broker.")
    model: ModelConfig = Field(default_factory=ModelConfig, description="The model bundle.")
    cameras: dict[Identifier, CameraConfig] = Field(
        default_factory=dict,
        description="Camera id (letters, digits, '_' and '-') -> camera. "
        "At least one camera or sensor group.",
    )
    sensors: dict[Identifier, SensorGroupConfig] = Field(
        default_factory=dict,
        description="Sensor group id -> group of line sensors with a time-series model (docs/timeseries.md). "
        "Ids share the topic level with camera ids, so they must differ from them.",
    )
    decision: DecisionConfig = Field(
        default_factory=DecisionConfig,
        description="Verdict rules for all cameras (see `cameras.<id>.decision`).",
    )
    images: ImagesConfig = Field(default_factory=ImagesConfig, description="Event images.")
    outbox: OutboxConfig = Field(
        default_factory=OutboxConfig, description="The durable queue of events and images for MQTT."
    )
    logging: LoggingConfig = Field(default_factory=LoggingConfig, description="Logging.")

    @field_validator("device_id", mode="before")
    @classmethod
    def _id_as_text(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value

    @field_validator("cameras", "sensors", mode="before")
    @classmethod
    def _ids_as_text(cls, value: Any) -> Any:
        # `1: {source: ...}` in YAML has an int key; camera ids are text.
        if isinstance(value, dict):
            return {
                str(k) if isinstance(k, int) and not isinstance(k, bool) else k: v for k, v in value.items()
            }
        return value

    @model_validator(mode="after")
    def _something_to_inspect(self) -> AgentConfig:
        if not self.cameras and not self.sensors:
            raise FieldError(
                "cameras", "must not be empty: give at least one camera, or a sensor group under sensors:"
            )
        shared = sorted(set(self.cameras) & set(self.sensors))
        if shared:
            raise FieldError(
                "sensors", f"ids {shared} are both cameras and sensor groups; their topics would clash"
            )
        return self

    @model_validator(mode="wrap")
    @classmethod
    def _fill_in(cls, data: Any, handler: ModelWrapValidatorHandler[AgentConfig]) -> AgentConfig:
        """Fill the defaults that depend on other keys: mqtt.client_id, each camera's merged decision and
        outbox.path."""
        config = handler(data)
        update: dict[str, Any] = {}
        if config.mqtt.client_id is None:
            update["mqtt"] = config.mqtt.model_copy(update={"client_id": f"inspect-agent-{config.device_id}"})
        cameras = {}
        for camera_id, camera in config.cameras.items():
            merged = _merge_decision(config.decision, camera.decision)
            cameras[camera_id] = camera.model_copy(update={"decision": merged})
        update["cameras"] = cameras
        update["sensors"] = {
            group_id: group.model_copy(update={"decision": _merge_decision(config.decision, group.decision)})
            for group_id, group in config.sensors.items()
        }
        if config.outbox.path is None:  # the state folder: /var/lib/inspect-agent with the default images.dir
            path = config.images.dir.parent / "outbox.sqlite3"
            update["outbox"] = config.outbox.model_copy(update={"path": path})
        return config.model_copy(update=update)

    def decision_for(self, camera_id: str) -> DecisionConfig:
        """The decision settings in force for one camera (its overrides merged over the top level)."""
        return self.cameras[camera_id].decision or self.decision

    def sensor_decision(self, group_id: str) -> DecisionConfig:
        """The decision settings in force for one sensor group."""
        return self.sensors[group_id].decision or self.decision


def _merge_decision(top: DecisionConfig, override: DecisionConfig | None) -> DecisionConfig:
    if override is None:
        return top
    changes: dict[str, Any] = {name: getattr(override, name) for name in override.model_fields_set}
    if "thresholds" in changes:
        changes["thresholds"] = {**top.thresholds, **override.thresholds}
    return top.model_copy(update=changes)
