"""One sensor group's thread: samples -> resampled rows -> window ring -> model every stride -> decision
-> event.

Contributing channels are found by occlusion, only for windows that raise an event: each channel in
turn is replaced by its values in the last window that scored clearly normal, and the score drop is its
contribution (a stuck sensor, a drift or a spike on that channel all disappear that way). Until a normal
window has been seen, the channel is replaced by its training mean (0 after standardisation).
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from typing import Protocol

import numpy as np

from agent.decision import Decider, Verdict
from agent.messages import (
    ChannelContribution,
    ModelRef,
    SensorEvent,
    SensorWindow,
    Topics,
    iso_ts,
    new_event_id,
)
from agent.sensors.counters import SensorCounters
from agent.sensors.model import SeriesBundle
from agent.sensors.resample import Resampler, Row
from agent.sensors.ring import WindowRing
from agent.sensors.samples import Sample
from agent.telemetry import LatencyRecorder

__all__ = ["SensorEventSink", "SensorWorker", "contributions"]

log = logging.getLogger("agent.sensors")

_QUEUE = 20000  # samples waiting for the worker (a few seconds of a fast group)
_MIN_SHARE = 0.25  # a channel contributes when its drop is at least this share of the largest drop
_MIN_DROP = 0.02


class SensorEventSink(Protocol):
    topics: Topics

    def publish_sensor_event(self, group: str, event: SensorEvent) -> int | None: ...


def contributions(
    bundle: SeriesBundle, window: np.ndarray, score: float, reference: np.ndarray | None
) -> list[ChannelContribution]:
    """Channels ranked by occlusion drop; those that stand out, or all when none does."""
    baseline = np.zeros_like(window) if reference is None else reference
    names = bundle.card.input.channels
    drops = []
    for c in range(window.shape[1]):
        occluded = window.copy()
        occluded[:, c] = baseline[:, c]
        drops.append(max(0.0, score - bundle.score(occluded)))
    z_max = np.abs(window).max(axis=0)
    ranked = sorted(range(len(names)), key=lambda c: drops[c], reverse=True)
    top = drops[ranked[0]]
    chosen = [
        c for c in ranked if top >= _MIN_DROP and drops[c] >= max(_MIN_DROP, _MIN_SHARE * top)
    ] or ranked
    return [
        ChannelContribution(channel=names[c], contribution=min(1.0, drops[c]), z_max=float(z_max[c]))
        for c in chosen
    ]


class SensorWorker:
    def __init__(
        self,
        device: str,
        group: str,
        bundle: SeriesBundle,
        decider: Decider,
        sink: SensorEventSink,
        counters: SensorCounters,
        latency: LatencyRecorder,
        max_gap_s: float,
        max_delay_s: float,
        max_clock_jump_s: float,
    ) -> None:
        spec = bundle.card.input
        self.device, self.group, self.bundle = device, group, bundle
        self.decider, self.sink, self.counters, self.latency = decider, sink, counters, latency
        self.resampler = Resampler(
            spec.channels, spec.sample_rate_hz, counters, max_gap_s, max_delay_s, max_clock_jump_s
        )
        self.ring = WindowRing(spec.window, len(spec.channels))
        self.stride = spec.stride
        self.seq = 0
        self.last_verdict: Verdict | None = None
        self._normal: np.ndarray | None = None  # last clearly normal window (standardised), for occlusion
        self._samples: queue.Queue[Sample | None] = queue.Queue(maxsize=_QUEUE)
        self._thread = threading.Thread(target=self._run, name=f"sensors-{group}", daemon=True)
        self._discard = threading.Event()
        self.finished = False

    def offer(self, sample: Sample) -> None:
        """From MQTT (paho's thread): never blocks; a full queue drops the sample and counts it."""
        try:
            self._samples.put_nowait(sample)
        except queue.Full:
            self.counters.overflow += 1

    def put(self, sample: Sample) -> None:
        """From a replay: waits for room, so a fast replay loses nothing."""
        self._samples.put(sample)

    def start(self) -> None:
        self._thread.start()

    def end_of_stream(self) -> None:
        self._samples.put(None)

    def stop(self, timeout: float = 2.0, discard: bool = False) -> None:
        """End after the queued samples (shutdown), or at once dropping them (``discard``: a reload, whose
        new group starts with an empty window anyway; a backlog must not keep the old one running)."""
        if discard:
            self._discard.set()
            with contextlib.suppress(queue.Empty):
                while True:
                    self._samples.get_nowait()
        with contextlib.suppress(queue.Full):
            self._samples.put(None, timeout=timeout)
        self._thread.join(timeout)
        if self._thread.is_alive():
            log.warning(
                "sensors %s: worker still busy %.1f s after stop; it ends on its own", self.group, timeout
            )

    def _run(self) -> None:
        try:
            while (sample := self._samples.get()) is not None and not self._discard.is_set():
                self._feed(self.resampler.add(sample))
            if not self._discard.is_set():
                self._feed(self.resampler.flush())
        except Exception:  # a bug must not go unnoticed, nor kill the agent silently
            log.exception("sensors %s: worker failed", self.group)
        finally:
            self.finished = True

    def _feed(self, rows: list[Row]) -> None:
        for row in rows:
            if row.restart:
                self.ring.reset()
            self.ring.push(row.t, row.values)
            if self.ring.full and self.ring.since_window >= (self.stride if self.seq else self.ring.length):
                self._inspect()

    def _inspect(self) -> None:
        started = time.perf_counter()
        times, values = self.ring.window()
        window = self.bundle.standardize(values)
        score = self.bundle.score(window)
        self.latency.add(f"sensors_{self.group}_inference", (time.perf_counter() - started) * 1000)
        self.seq += 1
        self.counters.windows += 1
        verdict = self.decider.decide(self.bundle.scores(score), time.monotonic())
        self.last_verdict = verdict
        if not verdict.ng:
            if score < verdict.threshold / 2:
                self._normal = window
            return
        self.counters.anomalous += 1
        if verdict.raise_event:
            self._publish(times, window, score, verdict)

    def _publish(self, times: np.ndarray, window: np.ndarray, score: float, verdict: Verdict) -> None:
        card = self.bundle.card
        spec = card.input
        event = SensorEvent(
            event_id=new_event_id(self.device, self.group, self.seq, float(times[-1])),
            ts=iso_ts(float(times[-1])),
            seq=self.seq,
            device=self.device,
            group=self.group,
            verdict="NG",
            label=verdict.label,
            score=score,
            threshold=verdict.threshold,
            window=SensorWindow(
                start=iso_ts(float(times[0])),
                end=iso_ts(float(times[-1])),
                samples=spec.window,
                sample_rate_hz=spec.sample_rate_hz,
            ),
            channels=contributions(self.bundle, window, score, self._normal),
            model=ModelRef(name=card.name, version=card.version, sha256=card.tflite_sha256),
        )
        self.sink.publish_sensor_event(self.group, event)
        self.counters.events += 1
        log.info(
            "sensors %s: anomaly %.2f > %.2f over %s .. %s (%s)",
            self.group,
            score,
            verdict.threshold,
            event.window.start,
            event.window.end,
            ", ".join(c.channel for c in event.channels),
        )
