"""``mqtt:``: the broker connection, TLS and credentials."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from agent.config.base import ConfigModel, FieldError
from agent.config.secrets import SecretRef

__all__ = ["MqttConfig", "TlsConfig"]


class TlsConfig(ConfigModel):
    """TLS to the broker. Omit the section (or set it to null) for plain TCP."""

    ca_file: Path | None = Field(
        default=None,
        description="CA certificate(s) (PEM) that signed the broker's certificate; null = the system CAs.",
    )
    cert_file: Path | None = Field(
        default=None, description="Client certificate (PEM) for mutual TLS; needs key_file."
    )
    key_file: Path | None = Field(
        default=None, description="Private key (PEM) of cert_file; needs cert_file."
    )
    insecure: bool = Field(
        default=False,
        description="Skip the check that the broker's certificate matches host (testing only).",
    )

    @model_validator(mode="after")
    def _cert_and_key(self) -> TlsConfig:
        if self.cert_file is not None and self.key_file is None:
            raise FieldError("key_file", "required when cert_file is set")
        if self.key_file is not None and self.cert_file is None:
            raise FieldError("cert_file", "required when key_file is set")
        return self


class MqttConfig(ConfigModel):
    """The MQTT broker the agent publishes to and takes commands from."""

    host: str = Field(default="localhost", min_length=1, description="Broker host name or IP address.")
    port: int = Field(
        default=1883, ge=1, le=65535, description="Broker port (usually 1883, or 8883 with TLS)."
    )
    prefix: str = Field(
        default="inspect",
        description="First topic level(s): topics are `<prefix>/<device_id>/...`; no wildcards (+ #), "
        "no leading or trailing '/'.",
    )
    client_id: str | None = Field(
        default=None,
        description="MQTT client id; null = `inspect-agent-<device_id>` (filled in when loaded).",
    )
    keepalive_s: int = Field(
        default=30, ge=1, le=65535, description="Seconds between keepalive pings to the broker."
    )
    username: str | None = Field(default=None, description="User name for the broker; null = anonymous.")
    password: SecretRef | None = Field(
        default=None,
        description="Password: {env: NAME}, {file: /path} or {credential: NAME}; never a plain string.",
    )
    tls: TlsConfig | None = Field(default=None, description="TLS settings; null = plain TCP.")
    qos_events: Literal[0, 1, 2] = Field(default=1, description="QoS of defect events and their images.")
    stats_interval_s: float = Field(default=30.0, gt=0, description="Seconds between stats messages.")
    reconnect_min_s: float = Field(
        default=1.0, gt=0, description="First reconnect delay after losing the broker (doubles each try)."
    )
    reconnect_max_s: float = Field(default=60.0, gt=0, description="Longest reconnect delay.")
    max_queued: int = Field(
        default=1000,
        ge=0,
        description="QoS 1 replies and state messages kept in memory while the broker is away (0 = no "
        "limit); events and images wait in the durable outbox instead, whatever this says.",
    )

    @field_validator("prefix")
    @classmethod
    def _check_prefix(cls, value: str) -> str:
        if not value:
            raise ValueError("must not be empty")
        if "+" in value or "#" in value or "\0" in value:
            raise ValueError("must not contain the wildcards + or #")
        if value.startswith("/") or value.endswith("/") or "//" in value:
            raise ValueError("must not start or end with '/' or contain an empty level '//'")
        return value

    @model_validator(mode="after")
    def _check(self) -> MqttConfig:
        if self.password is not None and self.username is None:
            raise FieldError("username", "required when password is set")
        if self.reconnect_min_s > self.reconnect_max_s:
            raise FieldError("reconnect_min_s", f"must not exceed reconnect_max_s ({self.reconnect_max_s:g})")
        return self
