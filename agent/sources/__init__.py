"""Camera sources: OpenCV readers (device, video file, RTSP/HTTP URL, image folder) and the grabber thread.

    grabber = Grabber(SourceSpec("line1", "/dev/video0", width=1280, height=720, fourcc="MJPG")).start()
    frame = grabber.latest(after_index=-1, timeout=2.0)   # newest Frame, or None
    grabber.stop()

See docs/sources.md.
"""

from agent.sources.grabber import STATUSES, Grabber, GrabberStats, Status, StatusListener, backoff_delay
from agent.sources.readers import CaptureReader, FolderReader, Reader, VideoFileReader, make_reader
from agent.sources.spec import SourceError, SourceKind, SourceSpec, classify_source, redact

__all__ = [
    "STATUSES",
    "CaptureReader",
    "FolderReader",
    "Grabber",
    "GrabberStats",
    "Reader",
    "SourceError",
    "SourceKind",
    "SourceSpec",
    "Status",
    "StatusListener",
    "VideoFileReader",
    "backoff_delay",
    "classify_source",
    "make_reader",
    "redact",
]
