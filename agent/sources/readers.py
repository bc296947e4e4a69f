"""Readers: one small protocol over OpenCV captures (device, URL, video file) and an image folder.

A reader is created once per camera and opened again after every failure, so a folder reader
remembers which files it has already delivered.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections import deque
from typing import Protocol

import cv2
import numpy as np

from agent.sources.spec import SourceError, SourceSpec, redact

__all__ = ["IMAGE_SUFFIXES", "CaptureReader", "FolderReader", "Reader", "VideoFileReader", "make_reader"]

log = logging.getLogger("agent.source")

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".pgm", ".ppm"})

# cv2.imread/imdecode flags by `reduce`: a JPEG decodes at 1/2, 1/4 or 1/8 size for a fraction of the cost.
_REDUCED_COLOR = {
    1: cv2.IMREAD_COLOR,
    2: cv2.IMREAD_REDUCED_COLOR_2,
    4: cv2.IMREAD_REDUCED_COLOR_4,
    8: cv2.IMREAD_REDUCED_COLOR_8,
}
_REDUCED_GREY = {
    1: cv2.IMREAD_GRAYSCALE,
    2: cv2.IMREAD_REDUCED_GRAYSCALE_2,
    4: cv2.IMREAD_REDUCED_GRAYSCALE_4,
    8: cv2.IMREAD_REDUCED_GRAYSCALE_8,
}


class Reader(Protocol):
    """``open`` raises :class:`SourceError`; ``read`` returns ``(image, source_pos)``, or None at the end
    of a finite source (then ``ended`` is True) or on failure; it may raise SourceError to say why.
    ``close`` is idempotent. ``live`` sources (devices, URLs) are judged by frame age; others are not."""

    ended: bool
    live: bool

    def open(self) -> None: ...

    def read(self) -> tuple[np.ndarray, int] | None: ...

    def close(self) -> None: ...


def make_reader(spec: SourceSpec, stop: threading.Event) -> Reader:
    """The reader for ``spec.kind``; ``stop`` interrupts its waits (pacing, folder polling)."""
    kind = spec.kind
    if kind == "folder":
        return FolderReader(spec, stop)
    if kind == "file":
        return VideoFileReader(spec, stop)
    return CaptureReader(spec)


def _to_grey(image: np.ndarray, grayscale: bool) -> np.ndarray:
    if grayscale and image.ndim == 3:
        return cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    return image


def _fourcc_text(value: float) -> str:
    code = int(value)
    return "".join(chr((code >> (8 * i)) & 0xFF) for i in range(4)).strip("\x00") or "?"


class CaptureReader:
    """A camera device (V4L2 on Linux) or a network stream (FFmpeg) through ``cv2.VideoCapture``."""

    live = True

    def __init__(self, spec: SourceSpec) -> None:
        self.spec = spec
        self.ended = False
        self._cap: cv2.VideoCapture | None = None
        self._where = f"camera {spec.camera}: cannot open {redact(spec.source)}"

    def open(self) -> None:
        self.close()
        cap = self._open_device() if self.spec.kind == "device" else self._open_url()
        self._cap = cap

    def read(self) -> tuple[np.ndarray, int] | None:
        if self._cap is None:
            return None
        ok, image = self._cap.read()
        if not ok or image is None:
            return None
        return _to_grey(image, self.spec.grayscale), -1

    def close(self) -> None:
        cap, self._cap = self._cap, None
        if cap is not None:
            cap.release()

    def _open_url(self) -> cv2.VideoCapture:
        spec = self.spec
        params = [
            cv2.CAP_PROP_OPEN_TIMEOUT_MSEC,
            int(spec.open_timeout_s * 1000),
            cv2.CAP_PROP_READ_TIMEOUT_MSEC,
            int(spec.read_timeout_s * 1000),
        ]
        cap = cv2.VideoCapture(spec.source, cv2.CAP_FFMPEG, params)
        if not cap.isOpened():
            cap.release()
            raise SourceError(
                f"{self._where}: no video stream within {spec.open_timeout_s:g} s "
                "(unreachable, refused, wrong path or not a video stream)"
            )
        return cap

    def _open_device(self) -> cv2.VideoCapture:
        spec = self.spec
        source = spec.source.strip()
        if sys.platform.startswith("linux"):
            path = f"/dev/video{source}" if source.isdigit() else source
            if not os.path.exists(path):
                raise SourceError(f"{self._where}: no such device")
            if not os.access(path, os.R_OK | os.W_OK):
                raise SourceError(f"{self._where}: permission denied (is the user in the 'video' group?)")
            cap = cv2.VideoCapture(path, cv2.CAP_V4L2)
        else:
            cap = cv2.VideoCapture(int(source) if source.isdigit() else source, cv2.CAP_ANY)
        if not cap.isOpened():
            cap.release()
            raise SourceError(f"{self._where}: not a capture device, or busy (another program using it?)")
        # FOURCC before the size: many UVC cameras offer large sizes at full rate only as MJPG.
        if spec.fourcc:
            cap.set(cv2.CAP_PROP_FOURCC, cv2.VideoWriter.fourcc(*spec.fourcc))
        if spec.width:
            cap.set(cv2.CAP_PROP_FRAME_WIDTH, spec.width)
        if spec.height:
            cap.set(cv2.CAP_PROP_FRAME_HEIGHT, spec.height)
        if spec.fps:
            cap.set(cv2.CAP_PROP_FPS, spec.fps)
        cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)  # fewer stale frames queued in the driver, where supported
        got = (
            int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)),
            int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)),
            cap.get(cv2.CAP_PROP_FPS),
            _fourcc_text(cap.get(cv2.CAP_PROP_FOURCC)),
        )
        log.info("camera %s: %s opened at %dx%d %.1f fps %s", spec.camera, source, *got)
        wanted = (spec.width or got[0], spec.height or got[1], spec.fps or got[2], spec.fourcc or got[3])
        if (wanted[0], wanted[1], wanted[3]) != (got[0], got[1], got[3]) or abs(wanted[2] - got[2]) > 0.5:
            log.warning(
                "camera %s: asked for %dx%d %.1f fps %s, the device gives %dx%d %.1f fps %s",
                spec.camera,
                *wanted,
                *got,
            )
        return cap


class VideoFileReader:
    """A video file, optionally looped, optionally paced at its frame rate (a camera stand-in)."""

    live = False

    def __init__(self, spec: SourceSpec, stop: threading.Event) -> None:
        self.spec = spec
        self.ended = False
        self.rate = 0.0  # frames per second used for pacing
        self._stop = stop
        self._cap: cv2.VideoCapture | None = None
        self._pos = 0
        self._t0: float | None = None
        self._paced = 0
        # reduce > 1: FFmpeg hands over the stored JPEG of each MJPG frame and libjpeg decodes it at 1/2,
        # 1/4 or 1/8 size (and straight to grey), far cheaper than a full decode plus a resize.
        self._jpeg_flags = (_REDUCED_GREY if spec.grayscale else _REDUCED_COLOR)[spec.reduce]

    def open(self) -> None:
        self.close()
        self.ended = False
        self._t0 = None
        self._cap = self._open_file()

    def read(self) -> tuple[np.ndarray, int] | None:
        if self._cap is None:
            return None
        image = self._decode(self._cap)
        if image is None:
            if self._pos == 0:
                raise SourceError(f"camera {self.spec.camera}: {self.spec.source}: no frame could be decoded")
            if not self.spec.loop:
                self.ended = True
                return None
            self.close()
            self._cap = self._open_file()  # raises if the file has gone meanwhile
            image = self._decode(self._cap)
            if image is None:
                raise SourceError(f"camera {self.spec.camera}: {self.spec.source}: no frame after looping")
            self._pos = 0
        if self.spec.realtime:
            self._pace()
        pos = self._pos
        self._pos += 1
        return image, pos

    def _decode(self, cap: cv2.VideoCapture) -> np.ndarray | None:
        ok, image = cap.read()
        if not ok or image is None:
            return None
        if self.spec.reduce == 1:
            return _to_grey(image, self.spec.grayscale)
        decoded = cv2.imdecode(image.reshape(-1), self._jpeg_flags)
        if decoded is None:
            raise SourceError(
                f"camera {self.spec.camera}: {self.spec.source}: reduce needs an MJPG video "
                f"(frame {self._pos} is not a JPEG)"
            )
        return decoded

    def close(self) -> None:
        cap, self._cap = self._cap, None
        if cap is not None:
            cap.release()

    def _open_file(self) -> cv2.VideoCapture:
        path = self.spec.source
        where = f"camera {self.spec.camera}: cannot open {path}"
        if not os.path.isfile(path):
            raise SourceError(f"{where}: no such file")
        cap = cv2.VideoCapture(path, cv2.CAP_FFMPEG)
        if not cap.isOpened():
            cap.release()
            raise SourceError(f"{where}: not a video file OpenCV can decode")
        if self.spec.reduce > 1 and not cap.set(cv2.CAP_PROP_FORMAT, -1):  # -1: the stored packets
            cap.release()
            raise SourceError(f"{where}: this OpenCV cannot hand over encoded frames (needed by reduce)")
        native = cap.get(cv2.CAP_PROP_FPS)
        self.rate = self.spec.fps or (native if 0 < native <= 1000 else 25.0)
        self._pos = 0
        return cap

    def _pace(self) -> None:
        """Sleep until this frame's slot on a fixed schedule (per-frame sleeps would drift)."""
        now = time.monotonic()
        if self._t0 is None:
            self._t0, self._paced = now, 0
        due = self._t0 + self._paced / self.rate
        if due > now:
            self._stop.wait(due - now)
        elif now - due > 1.0:  # far behind (a blocked consumer): restart the schedule instead of bursting
            self._t0 = now - self._paced / self.rate
        self._paced += 1


class FolderReader:
    """Images in a folder: those present at start sorted by name, then new ones as they appear.

    Polls with ``os.scandir`` (no inotify). A file is taken once its size and mtime are the same in two
    polls, so a half-copied image is not read. Unreadable images are counted and logged once each.
    """

    live = False

    def __init__(self, spec: SourceSpec, stop: threading.Event) -> None:
        self.spec = spec
        self.ended = False
        self.bad_files = 0
        self.last_name = ""  # the file the last image came from
        self._stop = stop
        self._seen: set[str] = set()
        self._pending: dict[str, tuple[int, int]] = {}
        self._ready: deque[str] = deque()
        self._count = 0
        grey = spec.grayscale
        self._flags = (_REDUCED_GREY if grey else _REDUCED_COLOR)[spec.reduce]

    def open(self) -> None:
        if not os.path.isdir(self.spec.source):
            raise SourceError(
                f"camera {self.spec.camera}: cannot open folder {self.spec.source}: no such directory"
            )
        self._pending.clear()
        self._ready.clear()

    def read(self) -> tuple[np.ndarray, int] | None:
        while not self._stop.is_set():
            while self._ready:
                name = self._ready.popleft()
                self._seen.add(name)
                image = cv2.imread(os.path.join(self.spec.source, name), self._flags)
                if image is None:
                    self.bad_files += 1
                    log.warning("camera %s: skipped %s: not a readable image", self.spec.camera, name)
                    continue
                self.last_name = name
                pos = self._count
                self._count += 1
                return image, pos
            self._poll()
            if not self._ready:
                self._stop.wait(self.spec.poll_interval_s)
        return None

    def close(self) -> None:
        self._ready.clear()

    def _poll(self) -> None:
        try:
            with os.scandir(self.spec.source) as entries:
                current = {}
                for entry in entries:
                    name = entry.name
                    if name.startswith(".") or os.path.splitext(name)[1].lower() not in IMAGE_SUFFIXES:
                        continue
                    if entry.is_file():
                        st = entry.stat()
                        current[name] = (st.st_size, st.st_mtime_ns)
        except (FileNotFoundError, NotADirectoryError) as exc:
            raise SourceError(f"camera {self.spec.camera}: folder {self.spec.source} has gone") from exc
        self._seen.intersection_update(
            current
        )  # forget deleted files, so memory stays the size of the folder
        fresh = {n: sig for n, sig in current.items() if n not in self._seen}
        ready = sorted(n for n, sig in fresh.items() if sig[0] > 0 and self._pending.get(n) == sig)
        self._pending = {n: sig for n, sig in fresh.items() if n not in ready}
        self._ready.extend(ready)
