"""The periodic ``stats`` message: rates over the last interval, totals since start, process health."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from agent.messages import CameraStats, LatencyStat, MqttStats, OutboxStats, ProcessStats, Stats, iso_ts
from agent.telemetry import ProcessMeter

if TYPE_CHECKING:
    from agent.service import Agent

__all__ = ["StatsReporter"]


class StatsReporter:
    def __init__(self, agent: Agent) -> None:
        self.agent = agent
        self.meter = ProcessMeter()
        self._last = time.monotonic()
        self._read: dict[str, int] = {}
        self._processed: dict[str, int] = {}

    def maybe_publish(self, force: bool = False) -> Stats | None:
        now = time.monotonic()
        interval = now - self._last
        if not force and interval < self.agent.config.mqtt.stats_interval_s:
            return None
        self._last = now
        stats = self.collect(max(interval, 1e-3))
        if self.agent.publisher is not None:
            self.agent.publisher.publish_stats(stats)
        self.agent.publish_state()  # keeps uptime and last-frame times fresh in the retained state
        return stats

    def collect(self, interval: float) -> Stats:
        agent = self.agent
        cameras = {}
        for camera, grabber in agent.grabbers.items():
            grabbed, worker = grabber.stats(), agent.workers[camera]
            # A camera a reload restarts goes on from its counts (Agent.start_camera); guard anyway.
            read = _delta(grabbed.frames_read, self._read.get(camera, 0))
            processed = _delta(worker.frames_processed, self._processed.get(camera, 0))
            self._read[camera], self._processed[camera] = grabbed.frames_read, worker.frames_processed
            cameras[camera] = CameraStats(
                fps_in=round(read / interval, 2),
                fps_processed=round(processed / interval, 2),
                frames_dropped=grabbed.frames_dropped,
                parts=worker.parts,
                ng=worker.ng,
                reconnects=grabbed.reconnects,
            )
        counters = agent.publisher.counters() if agent.publisher else None
        latency = {
            stage: LatencyStat(p50=round(p50, 2), p99=round(p99, 2), count=n)
            for stage, (p50, p99, n) in agent.latency.take().items()
        }
        return Stats(
            ts=iso_ts(time.time()),
            device=agent.config.device_id,
            interval_s=round(interval, 3),
            cameras=cameras,
            latency_ms=latency,
            outbox=OutboxStats(
                depth=agent.outbox.depth if agent.outbox else 0,
                evicted=agent.outbox.evicted if agent.outbox else 0,
                write_errors=agent.outbox.write_errors if agent.outbox else 0,
                direct=agent.forwarder.direct if agent.forwarder else 0,
            ),
            mqtt=MqttStats(
                reconnects=counters.reconnects if counters else 0,
                published=counters.published if counters else 0,
                publish_failed=counters.publish_failed if counters else 0,
            ),
            process=ProcessStats(
                cpu_percent=round(self.meter.cpu_percent(), 1),
                rss_mb=round(self.meter.rss_mb(), 1),
                temp_c=self.meter.temp_c(),
            ),
            sensors={group_id: group.counters.as_dict() for group_id, group in agent.sensors.items()},
        )


def _delta(now: int, before: int) -> int:
    return now - before if now >= before else now
