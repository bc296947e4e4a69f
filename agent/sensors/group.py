"""A configured sensor group, put together: model bundle, source, worker, counters; start and stop."""

from __future__ import annotations

import logging

from agent.config import DecisionConfig, SensorGroupConfig
from agent.decision import Decider, DecisionRules
from agent.sensors.counters import SensorCounters
from agent.sensors.model import load_series_bundle
from agent.sensors.source_csv import CsvReplaySource
from agent.sensors.source_mqtt import MqttSensorSource, Subscriber
from agent.sensors.source_serial import SerialSensorSource
from agent.sensors.worker import SensorEventSink, SensorWorker
from agent.telemetry import LatencyRecorder
from agent.wiring import decision_rules

__all__ = ["SensorGroup"]

log = logging.getLogger("agent.sensors")


class SensorGroup:
    def __init__(
        self,
        device: str,
        group_id: str,
        config: SensorGroupConfig,
        decision: DecisionConfig,
        sink: SensorEventSink,
        latency: LatencyRecorder,
        counters: SensorCounters | None = None,
    ) -> None:
        """Loads the model (InspectError if it is bad) but starts nothing. ``counters``: a group this one
        replaces (a reload), so the totals in the stats message go on counting."""
        self.group_id = group_id
        self.bundle = load_series_bundle(config.model, config.threads)
        card = self.bundle.card
        self.counters = counters or SensorCounters()
        self.worker = SensorWorker(
            device,
            group_id,
            self.bundle,
            Decider(self.rules(decision), card.good_label),
            sink,
            self.counters,
            latency,
            config.max_gap_s,
            config.max_delay_s,
            config.max_clock_jump_s,
        )
        channels = card.input.channels
        self.source: MqttSensorSource | SerialSensorSource | CsvReplaySource
        if config.source.serial is not None:
            self.source = SerialSensorSource(
                group_id, config.source.serial, channels, self.counters, self.worker.offer
            )
        elif config.source.csv is not None:
            csv = config.source.csv
            self.source = CsvReplaySource(
                group_id,
                csv.path,
                channels,
                csv.speed,
                csv.loop,
                self.counters,
                self.worker.put,
                self.worker.end_of_stream,
            )
        else:
            assert config.source.mqtt is not None
            mqtt = config.source.mqtt
            self.source = MqttSensorSource(
                group_id, mqtt.topics, channels, mqtt.qos, self.counters, self.worker.offer
            )
        spec = card.input
        log.info(
            "sensors %s: model %s v%s (%s), %d channels at %g Hz, window %d, stride %d, source %s",
            group_id,
            card.name,
            card.version,
            card.quantization,
            len(channels),
            spec.sample_rate_hz,
            spec.window,
            spec.stride,
            next(kind for kind in ("mqtt", "serial", "csv") if getattr(config.source, kind) is not None),
        )

    def rules(self, decision: DecisionConfig) -> DecisionRules:
        """The decision rules for this group's model under ``decision`` (a reload applies them in place)."""
        return decision_rules(self.bundle.card, decision)

    def start(self, subscriber: Subscriber, seq: int = 0) -> None:
        """Start inspecting; ``seq``: the last window number of the group this one replaces."""
        self.worker.seq = seq
        self.worker.start()
        self.source.start(subscriber)

    def stop(self, timeout: float = 2.0, discard: bool = False) -> None:
        """Stop reading, then inspecting: what is queued first (shutdown), or nothing more (``discard``)."""
        self.source.stop()
        self.worker.stop(timeout, discard)
        log.info("sensors %s: stopped; %s", self.group_id, self.counters.as_dict())

    @property
    def finished(self) -> bool:
        """A replay that has ended (and its windows inspected); a live MQTT group never finishes."""
        return self.source.finished and self.worker.finished
