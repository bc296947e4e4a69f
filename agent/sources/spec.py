"""What a camera source is: the spec from config, its kind, and the one error a reader raises."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Literal

__all__ = ["SourceError", "SourceKind", "SourceSpec", "classify_source", "redact"]

SourceKind = Literal["device", "file", "url", "folder"]

_URL_SCHEMES = ("rtsp://", "rtsps://", "rtmp://", "http://", "https://")


class SourceError(Exception):
    """A source cannot be opened or read. The message is one line meant for the user and the state topic."""


@dataclass(frozen=True)
class SourceSpec:
    """One camera: where its frames come from and how patiently to wait for them.

    ``source`` is a device index (``"0"``), a device path (``/dev/video2``, ``/dev/v4l/by-id/...``), an
    ``rtsp://``/``http(s)://`` URL, an image folder, or a video file (see :func:`classify_source`).
    ``width``/``height``/``fps``/``fourcc`` are requests to a device; for a file ``fps`` overrides the
    pacing rate. ``keep_all`` (None = automatic: folders and unpaced files) makes the grabber wait for the
    consumer instead of dropping frames.
    """

    camera: str
    source: str
    width: int | None = None
    height: int | None = None
    fps: float | None = None
    fourcc: str | None = None  # e.g. "MJPG" (USB cameras deliver 30 fps at 1080p only as MJPG), "YUYV"
    loop: bool = False  # video file: start again at the end instead of ending
    realtime: bool = True  # video file: paced at its native fps (False: as fast as it decodes)
    grayscale: bool = False  # decode hook: deliver single-channel images
    reduce: int = 1  # decode hook, folders and MJPG video files: 1, 2, 4 or 8 (cv2.IMREAD_REDUCED_*)
    keep_all: bool | None = None
    frozen_after: int = 0  # this many consecutive identical frames = a frozen stream (0 = off)
    reconnect_min_s: float = 0.5
    reconnect_max_s: float = 30.0
    stall_timeout_s: float = 10.0
    open_timeout_s: float = 5.0
    read_timeout_s: float = 5.0
    poll_interval_s: float = 0.25  # folders: how often to look for new files

    def __post_init__(self) -> None:
        where = f"camera {self.camera}"
        if self.reduce not in (1, 2, 4, 8):
            raise ValueError(f"{where}: reduce must be 1, 2, 4 or 8, got {self.reduce}")
        if self.reduce != 1 and self.kind in ("device", "url"):
            raise ValueError(f"{where}: reduce applies to video files and image folders, not to {self.kind}s")
        if self.fourcc is not None and len(self.fourcc) != 4:
            raise ValueError(f"{where}: fourcc must be 4 characters like 'MJPG', got {self.fourcc!r}")
        if not 0 < self.reconnect_min_s <= self.reconnect_max_s:
            raise ValueError(
                f"{where}: need 0 < reconnect_min_s <= reconnect_max_s, "
                f"got {self.reconnect_min_s} and {self.reconnect_max_s}"
            )
        for name in ("stall_timeout_s", "open_timeout_s", "read_timeout_s", "poll_interval_s"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{where}: {name} must be > 0, got {getattr(self, name)}")
        if self.frozen_after == 1 or self.frozen_after < 0:
            raise ValueError(f"{where}: frozen_after must be 0 (off) or >= 2, got {self.frozen_after}")

    @property
    def kind(self) -> SourceKind:
        return classify_source(self.source)

    @property
    def drops_frames(self) -> bool:
        """True when the grabber keeps only the newest frame (live sources, paced files)."""
        if self.keep_all is not None:
            return not self.keep_all
        kind = self.kind
        return not (kind == "folder" or (kind == "file" and not self.realtime))


def classify_source(source: str) -> SourceKind:
    """Digits or ``/dev/...`` -> device; rtsp/http(s) URL -> url; an existing directory, or a path ending
    in ``/`` -> folder; anything else -> file."""
    text = source.strip()
    if text.isdigit() or text.startswith("/dev/"):
        return "device"
    if text.lower().startswith(_URL_SCHEMES):
        return "url"
    if text.endswith(("/", os.sep)) or os.path.isdir(
        text
    ):  # a trailing slash: a folder that may not exist yet
        return "folder"
    return "file"


_CREDENTIALS = re.compile(r"(?<=://)[^/@\s]+@")


def redact(source: str) -> str:
    """The source as it may appear in logs and messages: ``rtsp://user:pass@host`` -> ``rtsp://***@host``."""
    return _CREDENTIALS.sub("***@", source)
