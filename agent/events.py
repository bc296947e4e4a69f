"""NG verdicts -> annotated JPEG (and raw), the local image store, then images and the event over MQTT.

Images go out before their event, so a subscriber that fetches ``images[].topic`` on
receiving the event finds them already delivered (both are QoS 1, published in order).
"""

from __future__ import annotations

import hashlib
import logging
import queue
import threading
import time
from typing import Protocol

from agent.detection import regions_in_frame
from agent.imagestore import ImageStore
from agent.localize import HeatmapSummary, summarize_heatmap
from agent.messages import (
    Event,
    FrameInfo,
    HeatmapStats,
    ImageRef,
    ModelRef,
    Region,
    Topics,
    iso_ts,
    new_event_id,
)
from agent.pipeline import EventJob
from agent.render import annotate, encode_jpeg, overlay_heatmap
from agent.telemetry import LatencyRecorder
from agent.trigger import Box

__all__ = ["EventPublisher", "EventSink", "ImageOptions"]

log = logging.getLogger(__name__)


class EventSink(Protocol):
    """What the event thread needs from the MQTT side (the publisher, or an outbox in front of it)."""

    topics: Topics

    def publish_image(self, camera: str, event_id: str, jpeg: bytes, raw: bool = False) -> int | None: ...
    def publish_event(self, camera: str, event: Event) -> int | None: ...


class ImageOptions:
    def __init__(self, max_side: int = 1280, quality: int = 85, publish_raw: bool = False) -> None:
        self.max_side, self.quality, self.publish_raw = max_side, quality, publish_raw


class EventPublisher:
    """The ``events`` thread: drains the job queue until a ``None`` sentinel."""

    def __init__(
        self,
        device: str,
        jobs: queue.Queue[EventJob | None],
        sink: EventSink,
        store: ImageStore | None,
        options: ImageOptions,
        latency: LatencyRecorder,
    ) -> None:
        self.device = device
        self.jobs = jobs
        self.sink = sink
        self.store = store
        self.options = options
        self.latency = latency
        self.published = self.failed = 0
        self._thread = threading.Thread(target=self._run, name="events", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Publish every queued event, then end the thread."""
        self.jobs.put(None)
        self._thread.join(timeout)
        if self._thread.is_alive():
            log.error("event thread did not finish within %.0f s; %d job(s) left", timeout, self.jobs.qsize())

    def _run(self) -> None:
        while True:
            job = self.jobs.get()
            if job is None:
                return
            try:
                self._publish(job)
                self.published += 1
            except Exception:
                self.failed += 1
                log.exception("camera %s: event for result %d could not be published", job.camera, job.seq)

    def _publish(self, job: EventJob) -> None:
        started = time.perf_counter()
        frame, verdict, card = job.frame, job.verdict, job.bundle.card
        event_id = new_event_id(self.device, job.camera, job.seq, frame.wall_time)
        text = f"NG {verdict.label} {verdict.defect_score:.2f} > {verdict.threshold:.2f}"
        box = job.inspection.part_box or job.inspection.crop
        summary, shown = None, frame.image
        if job.heatmap is not None:
            summary = summarize_heatmap(job.heatmap, job.inspection.crop, frame.image.shape)
            shown = overlay_heatmap(
                frame.image, summary.unit, job.heatmap.transform, job.inspection.crop, summary.threshold
            )
        # A detector's boxes, or the heatmap's regions (a model has one or the other).
        regions = regions_in_frame(job.detections, job.inspection.crop, frame.image.shape) + _regions(summary)
        drawn = annotate(
            shown, True, text, job.roi, box, [_rect(r.box) for r in regions],
            [f"{r.label or ''} {r.score:.2f}".strip() for r in regions],
        )  # fmt: skip
        images = [("annotated", encode_jpeg(drawn, self.options.max_side, self.options.quality))]
        if self.options.publish_raw:
            images.append(("raw", encode_jpeg(frame.image, self.options.max_side, self.options.quality)))
        refs = []
        for kind, jpeg in images:
            raw = kind == "raw"
            if self.store is not None and not raw:
                self.store.save(f"{event_id}.jpg", jpeg.data)
            self.sink.publish_image(job.camera, event_id, jpeg.data, raw=raw)
            refs.append(
                ImageRef(
                    kind="raw" if raw else "annotated",
                    topic=self.sink.topics.image(job.camera, event_id, raw),
                    width=jpeg.width,
                    height=jpeg.height,
                    bytes=len(jpeg.data),
                    sha256=hashlib.sha256(jpeg.data).hexdigest(),
                )
            )
        event = Event(
            event_id=event_id,
            ts=iso_ts(frame.wall_time),
            seq=job.seq,
            device=self.device,
            camera=job.camera,
            part_id=None if job.inspection.part_id is None else str(job.inspection.part_id),
            verdict="NG",
            label=verdict.label,
            score=min(1.0, verdict.score),
            defect_score=verdict.defect_score,
            threshold=verdict.threshold,
            regions=regions,
            heatmap=_heatmap_stats(summary),
            roi=list(job.roi) if job.roi else None,
            part_box=list(job.inspection.part_box) if job.inspection.part_box else None,
            model=ModelRef(name=card.name, version=card.version, sha256=card.tflite_sha256),
            images=refs,
            frame=FrameInfo.of(frame.image.shape, frame.index, frame.source_pos),
        )
        self.sink.publish_event(job.camera, event)
        self.latency.add("event_images", (time.perf_counter() - started) * 1000)
        self.latency.add("capture_to_event", (time.monotonic() - frame.mono_time) * 1000)


def _rect(box: list[int]) -> Box:
    return box[0], box[1], box[2], box[3]


def _regions(summary: HeatmapSummary | None) -> list[Region]:
    if summary is None:
        return []
    return [Region(box=list(r.box), score=min(1.0, max(0.0, r.score)), area=r.area) for r in summary.regions]


def _heatmap_stats(summary: HeatmapSummary | None) -> HeatmapStats | None:
    if summary is None:
        return None
    return HeatmapStats(
        kind=summary.kind,  # type: ignore[arg-type]
        peak=summary.peak,
        mean=summary.mean,
        area_fraction=summary.area_fraction,
        threshold=summary.threshold,
    )
