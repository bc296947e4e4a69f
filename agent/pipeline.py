"""One camera's path: newest frame -> trigger -> crop -> model -> decision -> result, and NG -> event job.

The inspection thread does only what the verdict needs; JPEG encoding, the disk and the
event's images run on the event thread behind a bounded queue, so a slow disk or broker
slows events down (the queue blocks when full) but never loses one and never delays
the next verdict until the queue is full.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from agent.bundle import Heatmap, ModelBundle, Scores
from agent.decision import Decider, Verdict
from agent.detection import Detection
from agent.messages import FrameInfo, Result, iso_ts
from agent.render import crop_padded
from agent.sources import Grabber
from agent.telemetry import LatencyRecorder
from agent.trigger import Box, Inspection, Trigger
from agent.types import Frame

__all__ = ["CameraCounts", "CameraWorker", "EventJob", "ModelSlot"]

log = logging.getLogger(__name__)


class ModelSlot:
    """The loaded model bundle, swappable at run time; the interpreter is used by one thread at a time."""

    def __init__(self, bundle: ModelBundle) -> None:
        self._bundle = bundle
        self._lock = threading.Lock()

    @property
    def bundle(self) -> ModelBundle:
        return self._bundle

    def swap(self, bundle: ModelBundle) -> ModelBundle:
        with self._lock:  # waits for an inference in progress on the old one
            old, self._bundle = self._bundle, bundle
        return old

    def classify(self, image: object) -> tuple[Scores, ModelBundle]:
        with self._lock:
            scores, _ = self._bundle.classify(image)  # type: ignore[arg-type]
            return scores, self._bundle


@dataclass(frozen=True)
class EventJob:
    """An NG verdict waiting for its images to be encoded and published, then its event."""

    camera: str
    seq: int
    frame: Frame
    inspection: Inspection
    verdict: Verdict
    bundle: ModelBundle
    roi: Box | None
    detections: tuple[Detection, ...] = ()  # a detector's, in the pixels of ``inspection.crop``
    heatmap: Heatmap | None = None  # where the model saw the defect; regions are computed on the event thread


@dataclass
class CameraCounts:
    """One camera's totals since the agent started. The agent keeps them per camera id and hands them to each
    worker it starts for that camera, so ``seq`` and the stats totals go on across a restart by reload."""

    seq: int = 0
    frames_processed: int = 0
    parts: int = 0
    ng: int = 0
    events_raised: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def next_seq(self) -> int:
        """Unique even while a stopping worker finishes its last frame beside the new one."""
        with self._lock:
            self.seq += 1
            return self.seq


class CameraWorker:
    """The inspection thread of one camera (``inspect-<camera>``)."""

    def __init__(
        self,
        camera: str,
        grabber: Grabber,
        trigger: Trigger,
        decider: Decider,
        model: ModelSlot,
        roi: Box | None,
        publish_result: Callable[[str, Result], None],
        events: queue.Queue[EventJob | None],
        latency: LatencyRecorder,
        counts: CameraCounts | None = None,
    ) -> None:
        self.camera = camera
        self.grabber = grabber
        self.trigger = trigger
        self.decider = decider
        self.model = model
        self.roi = roi
        self.publish_result = publish_result
        self.events = events
        self.latency = latency
        self.paused = False
        self.counts = counts or CameraCounts()
        self.last_frame: Frame | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"inspect-{camera}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    @property
    def frames_processed(self) -> int:
        return self.counts.frames_processed

    @property
    def parts(self) -> int:
        return self.counts.parts

    @property
    def ng(self) -> int:
        return self.counts.ng

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    @property
    def finished(self) -> bool:
        """The source ended (a video file without loop) and every frame taken was inspected."""
        return not self._thread.is_alive()

    def _run(self) -> None:
        after = -1
        while not self._stop.is_set():
            frame = self.grabber.latest(after_index=after, timeout=0.5)
            if frame is None:
                if self.grabber.status in ("ended", "stopped"):
                    return
                continue
            after = frame.index
            self.last_frame = frame
            if self.paused:
                continue
            try:
                self._inspect_frame(frame)
            except Exception:  # a bug in one frame must not stop the line; it is logged with its cause
                log.exception("camera %s: inspecting frame %d failed", self.camera, frame.index)

    def _inspect_frame(self, frame: Frame) -> None:
        started = time.perf_counter()
        inspections = self.trigger.update(frame)
        self.latency.add("trigger", (time.perf_counter() - started) * 1000)
        self.counts.frames_processed += 1
        for inspection in inspections:
            self._inspect(frame, inspection)

    def _inspect(self, frame: Frame, inspection: Inspection) -> None:
        started = time.perf_counter()
        crop = crop_padded(frame.image, inspection.crop)
        scores, bundle = self.model.classify(crop)
        self.latency.add("inference", (time.perf_counter() - started) * 1000)
        verdict = self.decider.decide(scores, frame.mono_time)
        seq = self.counts.next_seq()
        self.counts.parts += 1
        result = Result(
            ts=iso_ts(frame.wall_time),
            seq=seq,
            camera=self.camera,
            part_id=None if inspection.part_id is None else str(inspection.part_id),
            verdict="NG" if verdict.ng else "OK",
            label=verdict.label,
            score=min(1.0, max(0.0, verdict.score)),
            defect_score=verdict.defect_score,
            threshold=verdict.threshold,
            probabilities=scores.probabilities,
            latency_ms=(time.monotonic() - frame.mono_time) * 1000,
            part_box=list(inspection.part_box) if inspection.part_box else None,
            frame=FrameInfo.of(frame.image.shape, frame.index, frame.source_pos),
            model_sha256=bundle.card.tflite_sha256[:12],
        )
        if verdict.ng:
            self.counts.ng += 1
        if verdict.raise_event:
            self.counts.events_raised += 1
            # Blocks when the event thread is behind: back-pressure instead of a lost event.
            self.events.put(
                EventJob(
                    self.camera,
                    seq,
                    frame,
                    inspection,
                    verdict,
                    bundle,
                    self.roi,
                    detections=scores.detections,
                    heatmap=scores.heatmap,
                )
            )
        self.publish_result(self.camera, result)
        self.latency.add("capture_to_result", result.latency_ms)
