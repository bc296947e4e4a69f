"""Sensor samples from MQTT topics, through the agent's own MQTT connection (``MqttPublisher.subscribe``).

Each configured topic maps its payload to channel samples: a plain number (``21.5``), JSON with one
field (``{"value": 21.5, "ts": 1767225600.1}``) or JSON with several (``{"p": 5.1, "rpm": 1500}``).
A payload that gives nothing usable (not a number, NaN, missing field, a channel the model does not
know) is counted and logged, never raised: this runs on paho's thread.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, Protocol

from agent.config import TopicMapping
from agent.sensors.counters import ProblemLog, SensorCounters
from agent.sensors.samples import (
    BadPayload,
    Sample,
    decode,
    parse_number,
    pick_field,
    sample_time,
    samples_from_fields,
)

__all__ = ["MqttSensorSource", "Subscriber", "samples_from_payload"]

log = logging.getLogger("agent.sensors")


class Subscriber(Protocol):
    def subscribe(self, topic_filter: str, qos: int, handler: Callable[[str, bytes], None]) -> None: ...

    def unsubscribe(self, topic_filter: str) -> None: ...


def samples_from_payload(mapping: TopicMapping, topic: str, payload: bytes, arrival: float) -> list[Sample]:
    """The samples one message carries; raises ``BadPayload`` when it carries none."""
    document = decode(payload)
    when = sample_time(document, mapping.time_field, arrival) if isinstance(document, dict) else arrival
    if mapping.fields:
        if not isinstance(document, dict):
            raise BadPayload("non_numeric", f"expected a JSON object with {sorted(mapping.fields.values())}")
        return samples_from_fields(document, mapping.fields, when)
    channel = mapping.channel or topic.rsplit("/", 1)[-1]
    value: Any = pick_field(document, mapping.field) if isinstance(document, dict) else document
    return [Sample(channel, when, parse_number(value, "value"))]


class MqttSensorSource:
    """Subscribes the mapped topics; every good sample goes to ``on_sample`` (the worker's queue)."""

    def __init__(
        self,
        group: str,
        mappings: list[TopicMapping],
        channels: list[str],
        qos: int,
        counters: SensorCounters,
        on_sample: Callable[[Sample], None],
    ) -> None:
        self.group, self.mappings, self.qos = group, mappings, qos
        self.channels = set(channels)
        self.counters = counters
        self.on_sample = on_sample
        self.problem = ProblemLog(log, group)
        self.finished = False  # a live source never ends
        self._subscriber: Subscriber | None = None

    def start(self, subscriber: Subscriber) -> None:
        self._subscriber = subscriber
        for mapping in self.mappings:
            subscriber.subscribe(mapping.topic, self.qos, self._handler(mapping))

    def stop(self) -> None:
        """Unsubscribe: a reload changed or removed the group (at shutdown the connection ends anyway)."""
        subscriber, self._subscriber = self._subscriber, None
        if subscriber is not None:
            for mapping in self.mappings:
                subscriber.unsubscribe(mapping.topic)

    def _handler(self, mapping: TopicMapping) -> Callable[[str, bytes], None]:
        def handle(topic: str, payload: bytes) -> None:
            try:
                samples = samples_from_payload(mapping, topic, payload, time.time())
            except BadPayload as exc:
                self.counters.count(exc.kind)
                self.problem(exc.kind, topic, f"{exc}; payload {payload[:60]!r} ignored")
                return
            for sample in samples:
                if sample.channel not in self.channels:
                    self.counters.count("unknown_topic")
                    self.problem(
                        "unknown_topic",
                        topic,
                        f"channel {sample.channel!r} is not one of the "
                        f"model's {sorted(self.channels)}; ignored",
                    )
                    continue
                self.on_sample(sample)

        return handle
