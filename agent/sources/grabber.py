"""The grabber: one thread per camera that reads, timestamps and keeps the newest frame.

The thread only reads: a slow model never builds a backlog, because each new frame replaces the one
in the slot (counted as dropped if nobody took it). A source that fails is closed, reported ``offline``
and reopened with capped exponential backoff until it returns; ``stop()`` interrupts the wait.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np

from agent.sources.readers import Reader, make_reader
from agent.sources.spec import SourceError, SourceKind, SourceSpec, redact
from agent.types import Frame

__all__ = ["STATUSES", "Grabber", "GrabberStats", "Status", "StatusListener", "backoff_delay"]

log = logging.getLogger("agent.source")

Status = Literal["starting", "online", "offline", "stalled", "ended", "stopped"]
STATUSES: tuple[Status, ...] = ("starting", "online", "offline", "stalled", "ended", "stopped")
_FINAL = ("ended", "stopped")


@dataclass(frozen=True)
class GrabberStats:
    """A consistent snapshot of one camera's grabber, for the state and stats topics."""

    camera: str
    kind: SourceKind
    status: Status
    last_error: str | None
    frames_read: int
    frames_dropped: int
    reconnects: int
    read_errors: int
    bad_files: int  # folder sources: unreadable images skipped
    fps: float  # frames read per second over the last ~30 frames
    frame_age_s: float | None  # seconds since the newest frame was read; None before the first


StatusListener = Callable[[GrabberStats], None]


def backoff_delay(failures: int, min_s: float, max_s: float, rng: random.Random | None = None) -> float:
    """Seconds to wait before attempt ``failures + 1``: doubling from ``min_s``, capped, +-20 % jitter."""
    base = min(max_s, min_s * 2.0 ** max(0, failures - 1))
    jitter = (rng or random).uniform(0.8, 1.2)
    return min(max_s, max(min_s, base * jitter))


def _signature(image: np.ndarray) -> bytes:
    """A cheap fingerprint: identical frames give identical bytes, a live sensor's noise does not."""
    return cv2.resize(image, (16, 16), interpolation=cv2.INTER_AREA).tobytes()


class Grabber:
    """Reads one camera on thread ``grab-<camera>``; consumers call :meth:`latest`."""

    def __init__(
        self, spec: SourceSpec, status_listener: StatusListener | None = None, reader: Reader | None = None
    ) -> None:
        self.spec = spec
        self.status_listener = status_listener
        self._stop = threading.Event()
        self._reader = reader if reader is not None else make_reader(spec, self._stop)
        self._kind = spec.kind
        self._keep_all = not spec.drops_frames
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._slot: Frame | None = None
        self._taken = -1  # highest index handed to a consumer
        self._status: Status = "starting"
        self._last_error: str | None = None
        self._last_frame_mono: float | None = None
        self._times: deque[float] = deque(maxlen=30)
        self.frames_read = 0
        self.frames_dropped = 0
        self.reconnects = 0
        self.read_errors = 0

    def continue_counts(self, before: GrabberStats) -> None:
        """Go on from a stopped grabber's counts (a reload restarted the camera); call before start()."""
        self.frames_read, self.frames_dropped = before.frames_read, before.frames_dropped
        self.reconnects, self.read_errors = before.reconnects, before.read_errors

    # ---- consumer side -------------------------------------------------------------------------

    def start(self) -> Grabber:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=f"grab-{self.spec.camera}", daemon=True)
            self._thread.start()
        return self

    def stop(self, timeout: float | None = None) -> bool:
        """Stop and join the thread (which releases the capture). False if it is still blocked in a read.

        The default timeout covers one blocking open or read (``open_timeout_s``/``read_timeout_s``).
        """
        if timeout is None:
            timeout = max(self.spec.open_timeout_s, self.spec.read_timeout_s) + 1.0
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.warning(
                    "camera %s: grabber still blocked in a read after %.1f s", self.spec.camera, timeout
                )
                return False
        else:
            self._transition("stopped", None)
        return True

    def latest(self, after_index: int = -1, timeout: float = 1.0) -> Frame | None:
        """The newest frame with ``index > after_index``, waiting up to ``timeout`` s for one.

        None on timeout, or at once when the source has ended or the grabber has stopped and nothing
        newer is left.
        """
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                frame = self._slot
                if frame is not None and frame.index > after_index:
                    if frame.index > self._taken:
                        self._taken = frame.index
                        self._cond.notify_all()  # a keep_all grabber waits for this
                    return frame
                if self._status in _FINAL:
                    return None
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                self._cond.wait(remaining)

    def check_stall(self, now: float | None = None) -> bool:
        """Mark a live source ``stalled`` when online but without a frame for ``stall_timeout_s``.

        For a watchdog tick: the grabber thread itself may be blocked in a read (which ends, at the latest,
        after ``read_timeout_s`` and then reconnects). Files and folders never stall this way.
        """
        if not self._reader.live:
            return False
        now = time.monotonic() if now is None else now
        with self._cond:
            last = self._last_frame_mono
            if self._status != "online" or last is None or now - last <= self.spec.stall_timeout_s:
                return False
        return self._transition(
            "stalled", f"camera {self.spec.camera}: no frame for {now - last:.1f} s", only_if="online"
        )

    @property
    def status(self) -> Status:
        with self._cond:
            return self._status

    @property
    def last_error(self) -> str | None:
        with self._cond:
            return self._last_error

    @property
    def last_frame_mono(self) -> float | None:
        with self._cond:
            return self._last_frame_mono

    @property
    def thread(self) -> threading.Thread | None:
        return self._thread

    def stats(self) -> GrabberStats:
        with self._cond:
            return self._stats_locked()

    def __enter__(self) -> Grabber:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- grabber thread ------------------------------------------------------------------------

    def _run(self) -> None:
        reader, spec = self._reader, self.spec
        failures = 0
        try:
            while not self._stop.is_set():
                try:
                    reader.open()
                    outcome, error = self._pump(reader)
                except SourceError as exc:
                    outcome, error = "failed", str(exc)
                except Exception as exc:  # cv2.error and friends: report, never kill the thread
                    outcome = "failed"
                    error = f"camera {spec.camera}: {redact(spec.source)}: {type(exc).__name__}: {exc}"
                finally:
                    reader.close()
                if outcome == "ended":
                    self._transition("ended", None)
                    return
                if outcome == "stopped":
                    return
                failures = 1 if outcome == "recovered" else failures + 1
                if outcome != "stalled":
                    self._transition("offline", error)
                if self._stop.wait(backoff_delay(failures, spec.reconnect_min_s, spec.reconnect_max_s)):
                    return
                with self._cond:
                    self.reconnects += 1
        finally:
            reader.close()
            with self._cond:
                final = self._status == "ended"
            if not final:
                self._transition("stopped", None)

    def _pump(self, reader: Reader) -> tuple[str, str | None]:
        """Read until the source fails, ends or freezes. Outcome: ended | stopped | failed | stalled, and
        ``recovered`` instead of failed/stalled when this connection delivered frames (backoff restarts)."""
        spec = self.spec
        frozen_after = spec.frozen_after
        previous: bytes | None = None
        run = 0
        delivered = False
        while not self._stop.is_set():
            item = reader.read()
            if item is None:
                if self._stop.is_set():
                    break
                if reader.ended:
                    return "ended", None
                with self._cond:
                    self.read_errors += 1
                error = f"camera {spec.camera}: {redact(spec.source)}: stream lost (closed, or no frame"
                error += f" within {spec.read_timeout_s:g} s)"
                return ("recovered" if delivered else "failed"), error
            image, pos = item
            if frozen_after:
                signature = _signature(image)
                run = run + 1 if signature == previous else 1
                previous = signature
                if run >= frozen_after:
                    self._transition(
                        "stalled", f"camera {spec.camera}: frozen stream: {run} identical frames"
                    )
                    return "stalled", None
            self._publish(image, pos)
            delivered = True
        return "stopped", None

    def _publish(self, image: np.ndarray, pos: int) -> None:
        mono, wall = time.monotonic(), time.time()
        with self._cond:
            if self._keep_all:
                while self._slot is not None and self._slot.index > self._taken and not self._stop.is_set():
                    self._cond.wait(0.1)
            elif self._slot is not None and self._slot.index > self._taken:
                self.frames_dropped += 1
            self._slot = Frame(self.spec.camera, image, self.frames_read, wall, mono, pos)
            self.frames_read += 1
            self._last_frame_mono = mono
            self._times.append(mono)
            self._cond.notify_all()
            online = self._status == "online"
        if not online:
            self._transition("online", None)

    def _transition(self, status: Status, error: str | None, only_if: Status | None = None) -> bool:
        """Set the status; on a change, log it and tell the listener (outside the lock)."""
        with self._cond:
            if only_if is not None and self._status != only_if:
                return False
            if status != "online":
                self._last_error = error if error is not None else self._last_error
            else:
                self._last_error = None
            changed = status != self._status
            self._status = status
            self._cond.notify_all()
            snapshot = self._stats_locked() if changed else None
        camera = self.spec.camera
        if snapshot is None:
            if error:
                log.debug("camera %s: still %s: %s", camera, status, error)
            return False
        if status in ("offline", "stalled"):
            log.warning("camera %s: %s: %s", camera, status, error or self._last_error)
        else:
            log.info("camera %s: %s (%s)", camera, status, redact(self.spec.source))
        if self.status_listener is not None:
            try:
                self.status_listener(snapshot)
            except Exception:
                log.exception("camera %s: status listener failed", camera)
        return True

    def _stats_locked(self) -> GrabberStats:
        times = self._times
        span = times[-1] - times[0] if len(times) > 1 else 0.0
        last = self._last_frame_mono
        return GrabberStats(
            camera=self.spec.camera,
            kind=self._kind,
            status=self._status,
            last_error=self._last_error,
            frames_read=self.frames_read,
            frames_dropped=self.frames_dropped,
            reconnects=self.reconnects,
            read_errors=self.read_errors,
            bad_files=int(getattr(self._reader, "bad_files", 0)),
            fps=(len(times) - 1) / span if span > 0 else 0.0,
            frame_age_s=None if last is None else time.monotonic() - last,
        )
