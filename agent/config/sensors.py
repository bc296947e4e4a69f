"""``sensors.<group>:``: one group of line sensors, its time-series model, where samples come from.

sensors:
  press1:
    model: /var/lib/inspect-agent/models/sensors_dynamic.tflite
    source:
      mqtt:
        topics:
          - {topic: plc/press1/temperature, channel: temperature}          # a plain number
          - {topic: plc/press1/all, fields: {pressure: p, speed: rpm}}     # JSON, several channels
          - {topic: "plc/press1/raw/+"}          # the channel is the topic's last level
    decision: {min_consecutive: 2, cooldown_s: 10}
  oven2:
    model: /var/lib/inspect-agent/models/oven_int8.tflite
    source:
      serial: {port: /dev/serial/by-id/usb-FTDI_FT232R-if00-port0, baudrate: 115200}   # JSON lines
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from agent.config.base import ConfigModel, FieldError, Identifier
from agent.config.decision import DecisionConfig

__all__ = [
    "CsvSourceConfig",
    "MqttSourceConfig",
    "SensorGroupConfig",
    "SensorSourceConfig",
    "SerialSourceConfig",
    "TopicMapping",
]


class TopicMapping(ConfigModel):
    """One MQTT topic (or filter with ``+``/``#``) and how its payload becomes channel samples."""

    topic: str = Field(min_length=1, description="Full topic or filter, without the agent's prefix.")
    channel: str | None = Field(
        default=None,
        description="The channel this topic carries. Null (and no `fields`): the topic's last level names "
        "it. The payload is a plain number, or JSON whose `field` holds the number.",
    )
    field: str = Field(
        default="value", description="JSON key (dots for nesting) of the value, with `channel`."
    )
    fields: dict[str, str] = Field(
        default_factory=dict,
        description="Channel -> JSON key (dots for nesting), for a payload with several.",
    )
    time_field: str | None = Field(
        default="ts",
        description="JSON key of the sample time (epoch seconds, or ISO 8601). Missing or null: "
        "arrival time.",
    )

    @model_validator(mode="after")
    def _one_way(self) -> TopicMapping:
        if self.channel is not None and self.fields:
            raise FieldError("fields", "give either channel (one value) or fields (several), not both")
        return self


class MqttSourceConfig(ConfigModel):
    """Samples from MQTT topics on the agent's broker (a subscription of its own)."""

    topics: list[TopicMapping] = Field(min_length=1, description="Topics to subscribe to and their mapping.")
    qos: int = Field(default=0, ge=0, le=1, description="Subscription QoS.")


class CsvSourceConfig(ConfigModel):
    """Replay of a recorded CSV (a ``t`` column in seconds, one column per channel): tests and demos."""

    path: Path = Field(description="The CSV file. Relative to the config file.")
    speed: float = Field(
        default=1.0, ge=0, description="Replay speed: 1 = real time, 0 = as fast as possible."
    )
    loop: bool = Field(default=False, description="Start again at the end instead of ending.")


class SerialSourceConfig(ConfigModel):
    """Live samples from a serial port (an RS-232/RS-485 adapter, a USB CDC device), one record per line:
    a JSON object or CSV cells. When the port goes away it is opened again every `reconnect_s`."""

    port: str = Field(
        min_length=1,
        description="Device path, e.g. /dev/ttyUSB0 or (stable across re-plugging) /dev/serial/by-id/...",
    )
    baudrate: int = Field(default=115200, gt=0, description="Bits per second (8N1).")
    format: Literal["json", "csv"] = Field(
        default="json", description="json: one object per line; csv: cells in `columns` order."
    )
    fields: dict[str, str] = Field(
        default_factory=dict,
        description="json: channel -> key (dots for nesting). Empty: each model channel is its own key.",
    )
    columns: list[str] = Field(
        default_factory=list,
        description="csv: the name of each cell in order (model channels, the time field, others ignored).",
    )
    time_field: str | None = Field(
        default="ts",
        description="JSON key or CSV column of the sample time (epoch seconds, or ISO 8601). Missing or "
        "null: arrival time.",
    )
    reconnect_s: float = Field(default=2.0, gt=0, description="Seconds between attempts to open the port.")

    @model_validator(mode="after")
    def _csv_needs_columns(self) -> SerialSourceConfig:
        if self.format == "csv" and not self.columns:
            raise FieldError("columns", "format csv needs the name of each cell, e.g. [ts, temperature]")
        return self


class SensorSourceConfig(ConfigModel):
    """Exactly one of `mqtt`, `serial` or `csv`."""

    mqtt: MqttSourceConfig | None = Field(default=None, description="Live samples over MQTT.")
    serial: SerialSourceConfig | None = Field(default=None, description="Live samples from a serial port.")
    csv: CsvSourceConfig | None = Field(default=None, description="Replay of a CSV recording.")

    @model_validator(mode="after")
    def _exactly_one(self) -> SensorSourceConfig:
        if sum(source is not None for source in (self.mqtt, self.serial, self.csv)) != 1:
            raise ValueError("give exactly one of mqtt, serial or csv")
        return self


class SensorGroupConfig(ConfigModel):
    """A sensor group: samples resampled to the model's rate, a window inspected every stride."""

    enabled: bool = Field(default=True, description="False keeps the section but runs nothing.")
    model: Path = Field(
        description="The time-series .tflite; its model card (.json) beside it. Relative to the config file."
    )
    threads: int = Field(default=1, ge=1, description="Interpreter threads (the models are small).")
    source: SensorSourceConfig = Field(description="Where samples come from.")
    max_gap_s: float = Field(
        default=1.0,
        gt=0,
        description="A channel silent longer than this is a gap: the window restarts (no invented data). "
        "Shorter gaps are filled by interpolation.",
    )
    max_delay_s: float = Field(
        default=0.5,
        ge=0,
        description="How long samples are held for late or out-of-order arrivals before a row is built.",
    )
    max_clock_jump_s: float = Field(
        default=60.0,
        gt=0,
        description="A sample this far ahead of (or behind) the stream's clock is a clock jump: the window "
        "restarts at the new time.",
    )
    decision: DecisionConfig | None = Field(
        default=None,
        description="Overrides of the top-level `decision` for this group (one event per window).",
    )

    @field_validator("model")
    @classmethod
    def _tflite(cls, value: Path) -> Path:
        if value.suffix != ".tflite":
            raise ValueError(f"must be a .tflite file (its .json model card beside it), got {value.name!r}")
        return value


SensorGroups = dict[Identifier, SensorGroupConfig]
