"""Sensor time series on the device: samples from MQTT or a CSV replay, resampled into a window ring,
a time-series model every stride, the same decision rules, events through the same outbox.

    source (MqttSensorSource | CsvReplaySource) -> queue of Sample -> SensorWorker:
        Resampler (model rate, late/out-of-order/gaps/clock jumps) -> WindowRing -> model every stride
        -> Decider -> SensorEvent (window span, contributing channels) -> outbox -> MQTT
"""

from agent.sensors.counters import SensorCounters
from agent.sensors.resample import Resampler, Row
from agent.sensors.ring import WindowRing
from agent.sensors.samples import Sample

__all__ = ["Resampler", "Row", "Sample", "SensorCounters", "WindowRing"]
