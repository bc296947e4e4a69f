"""Frames -> the regions to inspect: every frame, every N ms, on command, or once per passing part.

Part presence is plain image processing on a downscaled ROI (no model): pixels that differ from
the belt's colour or carry strong edges form blobs; blobs are tracked from frame to frame, and each
track is inspected once, on the first frame where its centre reaches the ROI's centre line. So
there is one verdict per part, taken where the part is whole and best lit, however long it stays
in view, and several parts may be in view at once.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Literal, Protocol

import numpy as np

from agent.presence import find_blobs
from agent.types import Frame

__all__ = [
    "Box",
    "CommandTrigger",
    "ContinuousTrigger",
    "Inspection",
    "IntervalTrigger",
    "PresenceSettings",
    "PresenceTrigger",
    "Trigger",
    "find_blobs",
]

Box = tuple[int, int, int, int]  # x, y, width, height in frame pixels
Direction = Literal["left_to_right", "right_to_left", "top_to_bottom", "bottom_to_top"]


@dataclass(frozen=True)
class Inspection:
    """One region of one frame to hand to the model."""

    frame: Frame
    crop: Box  # what the model sees, in frame pixels (may reach past the frame: padded)
    part_id: int | None = None  # presence mode: the tracked part
    part_box: Box | None = None  # presence mode: the part's bounding box


class Trigger(Protocol):
    def update(self, frame: Frame) -> list[Inspection]: ...


def _roi_box(frame: Frame, roi: Box | None) -> Box:
    height, width = frame.image.shape[:2]
    if roi is None:
        return (0, 0, width, height)
    x, y = min(max(roi[0], 0), width - 1), min(max(roi[1], 0), height - 1)
    # Clip the far edges too: a ROI starting left of / above the frame loses the part outside it.
    return (x, y, max(1, min(roi[0] + roi[2], width) - x), max(1, min(roi[1] + roi[3], height) - y))


class ContinuousTrigger:
    """Every frame the consumer takes is inspected (the grabber already skips stale ones)."""

    def __init__(self, roi: Box | None = None) -> None:
        self.roi = roi

    def update(self, frame: Frame) -> list[Inspection]:
        return [Inspection(frame, _roi_box(frame, self.roi))]


class IntervalTrigger:
    """At most one inspection per ``interval_ms`` of capture time."""

    def __init__(self, interval_ms: float, roi: Box | None = None) -> None:
        self.interval_s = interval_ms / 1000.0
        self.roi = roi
        self._next: float | None = None

    def update(self, frame: Frame) -> list[Inspection]:
        if self._next is not None and frame.mono_time < self._next:
            return []
        self._next = frame.mono_time + self.interval_s
        return [Inspection(frame, _roi_box(frame, self.roi))]


class CommandTrigger:
    """Inspects the next frame after each ``request()`` (an MQTT command, a PLC signal)."""

    def __init__(self, roi: Box | None = None) -> None:
        self.roi = roi
        self._pending = 0
        self._lock = threading.Lock()

    def request(self) -> None:
        with self._lock:
            self._pending += 1

    def update(self, frame: Frame) -> list[Inspection]:
        with self._lock:
            if not self._pending:
                return []
            self._pending = 0  # requests that arrive between two frames share the next one
        return [Inspection(frame, _roi_box(frame, self.roi))]


@dataclass(frozen=True)
class PresenceSettings:
    direction: Direction = "left_to_right"
    min_area_fraction: float = 0.005  # of the ROI; smaller blobs are dust, labels, reflections
    centre_tolerance: float = 0.15  # a part whose centre is this close (fraction of ROI) is centred
    crop_scale: float = 1.5  # crop side / part size: the margin the training images had around parts
    colour_delta: int = 8  # least difference from the belt's fitted colour (grey levels) that is "part"
    noise_factor: float = 4.0  # ... and at least this many times the belt's own variation around the fit
    edge_delta: int = 12  # morphological gradient (grey levels, on the smoothed ROI) that counts as an edge
    max_area_fraction: float = 0.4  # of the ROI; a larger blob is the belt's texture or lighting, not a part
    detect_width: int = 320  # blobs are found on the ROI scaled to this width
    forget_after: int = 8  # frames a track may go unseen (a flicker, a dropped frame)


@dataclass
class _Track:
    id: int
    centre: tuple[float, float]
    box: Box
    last_index: int
    velocity: tuple[float, float] = (0.0, 0.0)  # px per frame index
    inspected: bool = False
    seen: int = 1  # frames matched so far; 0 = created this frame


class PresenceTrigger:
    """One inspection per part crossing the ROI centre line (see the module docstring)."""

    def __init__(self, settings: PresenceSettings, roi: Box | None = None) -> None:
        self.settings = settings
        self.roi = roi
        self._tracks: list[_Track] = []
        self._next_id = 0
        self.parts_seen = 0

    def _axis(self, point: tuple[float, float]) -> float:
        """Position along the travel direction: increases as a part moves on."""
        direction = self.settings.direction
        x, y = point
        return {"left_to_right": x, "right_to_left": -x, "top_to_bottom": y, "bottom_to_top": -y}[direction]

    def update(self, frame: Frame) -> list[Inspection]:
        rx, ry, rw, rh = _roi_box(frame, self.roi)
        boxes, _ = find_blobs(frame.image[ry : ry + rh, rx : rx + rw], self.settings)
        boxes = [(x + rx, y + ry, w, h) for x, y, w, h in boxes]
        centre_line = self._axis((rx + rw / 2, ry + rh / 2))
        along = self.settings.direction in ("left_to_right", "right_to_left")
        tolerance = self.settings.centre_tolerance * (rw if along else rh)
        inspections = []
        for box, track in self._associate(boxes, frame.index):
            previous = self._axis(track.centre) if track.seen else None
            self._advance(box, track, frame.index)
            if track.inspected:
                continue
            x, y, w, h = box
            cut = x <= rx or x + w >= rx + rw if along else y <= ry or y + h >= ry + rh
            if cut:
                continue  # entering or leaving through the ROI's edge: not the whole part yet
            position = self._axis(track.centre)
            crossed = previous is not None and previous < centre_line <= position
            # Inspected on reaching the centre line, not before; the tolerance is only for a part first seen
            # whole just past it (the track is new, or the part was cut by the ROI edge when it crossed).
            if crossed or centre_line <= position <= centre_line + tolerance:
                track.inspected = True
                self.parts_seen += 1
                inspections.append(Inspection(frame, self._crop(box), track.id, box))
        self._tracks = [t for t in self._tracks if frame.index - t.last_index <= self.settings.forget_after]
        return inspections

    def _crop(self, box: Box) -> Box:
        x, y, w, h = box
        side = round(max(w, h) * self.settings.crop_scale)
        return (round(x + w / 2 - side / 2), round(y + h / 2 - side / 2), side, side)

    def _associate(self, boxes: list[Box], index: int) -> list[tuple[Box, _Track]]:
        """Greedy nearest match of boxes to tracks at their predicted positions; new tracks for the rest."""
        matched: list[tuple[Box, _Track]] = []
        free = list(self._tracks)
        for box in sorted(boxes, key=lambda b: -b[2] * b[3]):
            centre = (box[0] + box[2] / 2, box[1] + box[3] / 2)
            best, best_distance = None, 0.75 * max(box[2], box[3])
            for track in free:
                dt = index - track.last_index
                px, py = track.centre[0] + track.velocity[0] * dt, track.centre[1] + track.velocity[1] * dt
                distance = float(np.hypot(centre[0] - px, centre[1] - py))
                if distance < best_distance:
                    best, best_distance = track, distance
            if best is None:
                best = _Track(self._next_id, centre, box, index, seen=0)
                self._next_id += 1
                self._tracks.append(best)
            else:
                free.remove(best)
            matched.append((box, best))
        return matched

    @staticmethod
    def _advance(box: Box, track: _Track, index: int) -> None:
        centre = (box[0] + box[2] / 2, box[1] + box[3] / 2)
        if track.seen:
            dt = max(1, index - track.last_index)
            track.velocity = ((centre[0] - track.centre[0]) / dt, (centre[1] - track.centre[1]) / dt)
        track.centre, track.box, track.last_index = centre, box, index
        track.seen += 1
