"""Camera sources and the grabber: real OpenCV, real video files, a real MJPEG server on localhost.

Each frame carries its index as a bright vertical bar at x = index * BAR, so order survives JPEG.
Every wait is bounded; timing checks use frame timestamps, not wall-clock thresholds.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from agent.sources import (
    Grabber,
    GrabberStats,
    SourceError,
    SourceSpec,
    backoff_delay,
    classify_source,
    make_reader,
    redact,
)
from agent.types import Frame
from tests.mjpeg_server import MjpegServer

W, H, BAR = 320, 64, 8  # room for 40 distinct bars


def bar_image(index: int) -> np.ndarray:
    image = np.full((H, W, 3), 30, np.uint8)
    x = (index % (W // BAR)) * BAR
    image[:, x : x + BAR - 2] = 230
    return image


def bar_of(image: np.ndarray) -> int:
    grey = image if image.ndim == 2 else image[..., 1]
    column = grey.mean(axis=0)
    return round(int(np.argmax(column > 128)) / BAR)


def write_video(path: Path, count: int, fps: float = 20.0) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), fps, (W, H))
    assert writer.isOpened()
    for i in range(count):
        writer.write(bar_image(i))
    writer.release()
    return path


def wait_for(predicate: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


def drain(grabber: Grabber, limit: int = 1000, timeout: float = 5.0) -> list[Frame]:
    """Take frames until the source ends (or ``limit``), like a consumer that keeps up."""
    frames: list[Frame] = []
    last = -1
    while len(frames) < limit:
        frame = grabber.latest(last, timeout)
        if frame is None:
            break
        frames.append(frame)
        last = frame.index
    return frames


class Recorder:
    """A status listener that remembers every transition."""

    def __init__(self) -> None:
        self.seen: list[GrabberStats] = []

    def __call__(self, stats: GrabberStats) -> None:
        self.seen.append(stats)

    @property
    def statuses(self) -> list[str]:
        return [s.status for s in self.seen]


@pytest.fixture
def grab() -> Iterator[Callable[..., Grabber]]:
    """Start grabbers that are always stopped at the end of the test."""
    started: list[Grabber] = []

    def start(spec: SourceSpec, listener: Recorder | None = None) -> Grabber:
        grabber = Grabber(spec, status_listener=listener).start()
        started.append(grabber)
        return grabber

    yield start
    for grabber in started:
        assert grabber.stop(timeout=5)


@pytest.fixture
def server() -> Iterator[MjpegServer]:
    with MjpegServer([bar_image(i) for i in range(10)], fps=25) as srv:
        yield srv


def quick(camera: str, source: str, **changes: Any) -> SourceSpec:
    """A spec with short timeouts and backoff, so that failure tests take well under a second."""
    spec = SourceSpec(
        camera, source, reconnect_min_s=0.05, reconnect_max_s=0.3, open_timeout_s=1.0, read_timeout_s=1.0
    )
    return dataclasses.replace(spec, **changes)


# ---- spec ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "kind"),
    [
        ("0", "device"),  # an index
        ("/dev/video2", "device"),
        ("/dev/v4l/by-id/usb-Cam-video-index0", "device"),  # stable names for udev symlinks
        ("rtsp://user:pw@10.0.0.5:554/stream1", "url"),
        ("HTTP://cam.local/video.mjpg", "url"),
        ("/tmp", "folder"),  # an existing directory
        ("/srv/not-yet-there/", "folder"),  # a trailing slash says folder before it exists
        ("/data/line1.mp4", "file"),
    ],
)
def test_classify_source(source: str, kind: str) -> None:
    assert classify_source(source) == kind


def test_redact_hides_credentials() -> None:
    assert redact("rtsp://admin:secret@10.0.0.5/s1") == "rtsp://***@10.0.0.5/s1"
    assert redact("http://cam.local/video") == "http://cam.local/video"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"reduce": 3}, "reduce must be 1, 2, 4 or 8, got 3"),
        ({"reduce": 2}, "reduce applies to video files and image folders, not to devices"),
        ({"frozen_after": 1}, "frozen_after must be 0 (off) or >= 2"),
        ({"fourcc": "MJPEG"}, "fourcc must be 4 characters"),
        ({"reconnect_min_s": 5, "reconnect_max_s": 1}, "reconnect_min_s <= reconnect_max_s"),
        ({"read_timeout_s": 0}, "read_timeout_s must be > 0"),
    ],
)
def test_spec_rejects_bad_values(change: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match="camera c1: ") as info:
        SourceSpec("c1", "0", **change)  # type: ignore[arg-type]
    assert message in str(info.value)


def test_backoff_doubles_and_is_capped() -> None:
    delays = [backoff_delay(n, 0.5, 30.0) for n in range(1, 12)]
    assert 0.5 <= delays[0] <= 0.6
    assert 0.8 <= delays[2] <= 2.4  # 2 s +-20 %
    assert all(d <= 30.0 for d in delays)
    assert delays[-1] >= 24.0


# ---- video files --------------------------------------------------------------------------------


def test_file_reads_every_frame_in_order_then_ends(tmp_path: Path, grab: Callable[..., Grabber]) -> None:
    path = write_video(tmp_path / "clip.avi", 12)
    listener = Recorder()
    grabber = grab(SourceSpec("c1", str(path), realtime=False), listener)  # unpaced file: nothing dropped
    frames = drain(grabber)
    assert [f.index for f in frames] == list(range(12))
    assert [f.source_pos for f in frames] == list(range(12))
    assert [bar_of(f.image) for f in frames] == list(range(12))
    assert all(f.camera == "c1" and f.image.shape == (H, W, 3) for f in frames)
    assert wait_for(lambda: grabber.status == "ended", 2)
    assert listener.statuses == ["online", "ended"]
    assert grabber.stats().frames_dropped == 0
    assert grabber.stats().reconnects == 0


def test_paced_file_follows_its_frame_rate(tmp_path: Path, grab: Callable[..., Grabber]) -> None:
    path = write_video(tmp_path / "clip.avi", 10, fps=20)
    paced = drain(grab(SourceSpec("paced", str(path), realtime=True, keep_all=True)))
    unpaced = drain(grab(SourceSpec("fast", str(path), realtime=False)))
    assert len(paced) == len(unpaced) == 10
    assert paced[-1].mono_time - paced[0].mono_time >= 0.35  # 9 intervals of 50 ms
    assert unpaced[-1].mono_time - unpaced[0].mono_time < 0.35


def test_looped_file_wraps_around(tmp_path: Path, grab: Callable[..., Grabber]) -> None:
    path = write_video(tmp_path / "clip.avi", 5)
    grabber = grab(SourceSpec("c1", str(path), loop=True, realtime=False))
    frames = drain(grabber, limit=12)
    assert [f.source_pos for f in frames] == [0, 1, 2, 3, 4, 0, 1, 2, 3, 4, 0, 1]
    assert [bar_of(f.image) for f in frames] == [f.source_pos for f in frames]
    assert [f.index for f in frames] == list(range(12))  # index keeps counting across loops
    assert grabber.status == "online"


def test_slow_consumer_always_gets_the_newest_frame(tmp_path: Path, grab: Callable[..., Grabber]) -> None:
    path = write_video(tmp_path / "clip.avi", 40, fps=100)
    grabber = grab(SourceSpec("c1", str(path), realtime=True))  # paced file: a camera stand-in, drops
    taken: list[Frame] = []
    last = -1
    while True:
        read_before = grabber.frames_read
        frame = grabber.latest(last, timeout=5)
        if frame is None:
            break
        assert frame.index >= read_before - 1  # nothing older than what was there when we asked
        taken.append(frame)
        last = frame.index
        time.sleep(0.05)  # a slow model: five frames arrive while it works
    stats = grabber.stats()
    indices = [f.index for f in taken]
    assert indices == sorted(set(indices))  # strictly increasing
    assert stats.status == "ended"
    assert stats.frames_read == 40
    assert stats.frames_dropped > 10
    assert stats.frames_dropped + len(taken) == stats.frames_read  # every frame taken or counted dropped


def test_removed_file_goes_offline_and_resumes_when_back(
    tmp_path: Path, grab: Callable[..., Grabber]
) -> None:
    path = write_video(tmp_path / "clip.avi", 5)
    data = path.read_bytes()
    grabber = grab(quick("c1", str(path), loop=True, realtime=False, keep_all=False))
    assert grabber.latest(-1, 5) is not None
    path.unlink()
    assert wait_for(lambda: grabber.status == "offline", 5)
    assert "no such file" in (grabber.last_error or "")
    path.write_bytes(data)
    assert wait_for(lambda: grabber.status == "online", 5)
    assert grabber.latest(grabber.frames_read - 1, 5) is not None


# ---- folders ------------------------------------------------------------------------------------


def test_folder_reads_existing_then_new_files_and_skips_corrupt(
    tmp_path: Path, grab: Callable[..., Grabber]
) -> None:
    for i in (2, 0, 1):  # written out of order, read by name
        cv2.imwrite(str(tmp_path / f"img{i:03d}.png"), bar_image(i))
    (tmp_path / "notes.txt").write_text("not an image")
    grabber = grab(SourceSpec("c1", str(tmp_path), poll_interval_s=0.05))
    first = drain(grabber, limit=3)
    assert [bar_of(f.image) for f in first] == [0, 1, 2]
    assert [f.source_pos for f in first] == [0, 1, 2]

    (tmp_path / "img003.png").write_bytes(b"\x89PNG\r\n\x1a\n but not really")
    cv2.imwrite(str(tmp_path / "img004.png"), bar_image(4))
    frame = grabber.latest(first[-1].index, timeout=5)
    assert frame is not None and bar_of(frame.image) == 4
    stats = grabber.stats()
    assert stats.bad_files == 1
    assert stats.status == "online"


def test_folder_waits_for_a_file_still_being_written(tmp_path: Path, grab: Callable[..., Grabber]) -> None:
    ok, png = cv2.imencode(".png", bar_image(7))
    assert ok
    data = png.tobytes()
    grabber = grab(SourceSpec("c1", str(tmp_path), poll_interval_s=0.15))

    def slow_copy() -> None:
        with open(tmp_path / "part.png", "wb") as out:
            for start in range(0, len(data), len(data) // 8 + 1):
                out.write(data[start : start + len(data) // 8 + 1])
                out.flush()
                time.sleep(0.05)

    writer = threading.Thread(target=slow_copy)
    writer.start()
    frame = grabber.latest(-1, timeout=5)
    writer.join(5)
    assert frame is not None and bar_of(frame.image) == 7
    assert grabber.stats().bad_files == 0


def test_folder_reduce_and_grayscale_hooks(tmp_path: Path) -> None:
    cv2.imwrite(str(tmp_path / "a.jpg"), bar_image(3))
    reader = make_reader(SourceSpec("c1", str(tmp_path), reduce=2, grayscale=True), threading.Event())
    reader.open()
    item = reader.read()
    reader.close()
    assert item is not None
    assert item[0].shape == (H // 2, W // 2)


def test_file_reduce_decodes_mjpg_frames_smaller_and_loops(
    tmp_path: Path, grab: Callable[..., Grabber]
) -> None:
    path = write_video(tmp_path / "clip.avi", 5)
    frames = drain(grab(SourceSpec("c1", str(path), loop=True, realtime=False, reduce=2)), limit=7)
    assert [f.source_pos for f in frames] == [0, 1, 2, 3, 4, 0, 1]
    assert all(f.image.shape == (H // 2, W // 2, 3) for f in frames)
    assert [bar_of(cv2.resize(f.image, (W, H))) for f in frames] == [f.source_pos for f in frames]
    grey = drain(grab(SourceSpec("c2", str(path), realtime=False, reduce=4, grayscale=True)))
    assert [f.image.shape for f in grey] == [(H // 4, W // 4)] * 5  # decoded straight to grey


def test_file_reduce_needs_an_mjpg_video(tmp_path: Path) -> None:
    path = tmp_path / "clip.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"mp4v"), 20.0, (W, H))
    for i in range(3):
        writer.write(bar_image(i))
    writer.release()
    reader = make_reader(SourceSpec("c1", str(path), realtime=False, reduce=2), threading.Event())
    reader.open()
    try:
        with pytest.raises(SourceError, match="reduce needs an MJPG video"):
            reader.read()
    finally:
        reader.close()


# ---- HTTP MJPEG ---------------------------------------------------------------------------------


def test_mjpeg_over_http(server: MjpegServer, grab: Callable[..., Grabber]) -> None:
    grabber = grab(quick("c1", server.url))
    frames = drain(grabber, limit=5)
    assert len(frames) == 5
    bars = [bar_of(f.image) for f in frames]
    assert all((b - a) % 10 >= 1 for a, b in itertools.pairwise(bars))  # moving forward
    assert all(f.source_pos == -1 for f in frames)
    assert grabber.stats().kind == "url"
    assert grabber.status == "online"


def test_http_server_gone_then_back(server: MjpegServer, grab: Callable[..., Grabber]) -> None:
    listener = Recorder()
    grabber = grab(quick("c1", server.url), listener)
    assert grabber.latest(-1, 5) is not None
    server.stop()
    assert wait_for(lambda: grabber.status == "offline", 5)
    assert server.url in (grabber.last_error or "")
    assert wait_for(lambda: grabber.reconnects >= 2, 5)
    server.start()
    assert wait_for(lambda: grabber.status == "online", 5)
    assert grabber.latest(grabber.frames_read - 1, 5) is not None
    assert listener.statuses[:3] == ["online", "offline", "online"]
    assert listener.seen[1].last_error is not None


def test_hung_stream_is_stalled_then_reconnects(server: MjpegServer, grab: Callable[..., Grabber]) -> None:
    spec = quick("c1", server.url, stall_timeout_s=0.3)
    grabber = grab(spec)
    assert grabber.latest(-1, 5) is not None
    server.pause()  # connection stays open, nothing arrives: the read blocks until read_timeout_s
    assert wait_for(grabber.check_stall, 2)
    assert grabber.status == "stalled"
    assert "no frame for" in (grabber.last_error or "")
    assert wait_for(lambda: grabber.status == "offline", 5)  # the read timed out
    server.resume()
    assert wait_for(lambda: grabber.status == "online", 5)


def test_frozen_stream_is_stalled(grab: Callable[..., Grabber]) -> None:
    listener = Recorder()
    with MjpegServer([bar_image(3)], fps=50) as srv:  # the same picture over and over
        grabber = grab(quick("c1", srv.url, frozen_after=5), listener)
        assert wait_for(lambda: "stalled" in listener.statuses, 5)
        assert wait_for(lambda: grabber.reconnects >= 1, 5)
    stalled = listener.seen[listener.statuses.index("stalled")]
    assert stalled.last_error is not None and "frozen stream: 5 identical frames" in stalled.last_error


# ---- missing sources, stop, leaks ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("/dev/video99", "cannot open /dev/video99: no such device"),  # an unplugged camera
        ("/dev/null", "cannot open /dev/null: not a capture device"),  # exists, but is no camera
        ("missing.avi", "missing.avi: no such file"),
        ("http://127.0.0.1:9/none.mjpg", "no video stream within 1 s"),  # nothing listens on port 9
    ],
)
def test_missing_source_is_offline_and_retried_with_backoff(
    tmp_path: Path, grab: Callable[..., Grabber], name: str, reason: str
) -> None:
    source = str(tmp_path / name) if name.endswith(".avi") else name
    listener = Recorder()
    grabber = grab(quick("line1", source), listener)
    assert wait_for(lambda: grabber.reconnects >= 3, 5)
    assert grabber.status == "offline"
    assert listener.statuses == ["offline"]  # one transition, not one per attempt
    error = grabber.last_error or ""
    assert error.startswith("camera line1: ") and reason in error and "\n" not in error
    time.sleep(0.5)
    assert grabber.reconnects <= 15  # backoff: 50 ms doubling to 300 ms, not a busy loop
    thread = grabber.thread
    assert grabber.stop(timeout=5)
    assert thread is not None and not thread.is_alive()
    assert grabber.status == "stopped"


def test_stop_joins_the_thread_and_wakes_consumers(server: MjpegServer) -> None:
    grabber = Grabber(quick("cam-a", server.url)).start()
    thread = grabber.thread
    assert thread is not None and thread.name == "grab-cam-a"
    first = grabber.latest(-1, 5)
    assert first is not None
    waiter_result: list[Frame | None] = []
    waiter = threading.Thread(target=lambda: waiter_result.append(grabber.latest(10**9, timeout=10)))
    waiter.start()
    assert grabber.stop(timeout=5)
    waiter.join(2)
    assert not waiter.is_alive() and waiter_result == [None]  # woken by stop, not by its 10 s timeout
    assert not thread.is_alive()
    assert grabber.status == "stopped"


def test_no_thread_or_fd_leak_over_many_reconnects(tmp_path: Path) -> None:
    def fds() -> int:
        return len(os.listdir("/proc/self/fd"))

    def native_threads() -> int:  # FFmpeg's own threads too, which threading.active_count() does not see
        return len(os.listdir("/proc/self/task"))

    path = write_video(tmp_path / "short.avi", 3)
    srv = MjpegServer([bar_image(i) for i in range(5)], fps=100, per_connection=3)  # hangs up after 3
    srv.start()
    before_threads, before_fds, before_native = threading.active_count(), fds(), native_threads()
    fast = {"reconnect_min_s": 0.01, "reconnect_max_s": 0.02}
    http = Grabber(quick("http", srv.url, **fast)).start()
    looped = Grabber(SourceSpec("file", str(path), loop=True, realtime=False, keep_all=False)).start()
    missing = Grabber(quick("gone", str(tmp_path / "gone.avi"), **fast)).start()
    try:
        assert wait_for(lambda: http.reconnects >= 20 and missing.reconnects >= 20, 20)
        assert wait_for(lambda: looped.frames_read >= 60, 10)  # 20 loops, each a reopen
    finally:
        assert http.stop(5) and looped.stop(5) and missing.stop(5)
    srv.stop()
    assert srv.connections_served >= 20
    assert wait_for(lambda: threading.active_count() == before_threads - 1, 5)  # the server's thread too
    assert wait_for(lambda: fds() <= before_fds - 1, 5), f"fds: {before_fds} before, {fds()} after"
    assert wait_for(lambda: native_threads() <= before_native - 1, 5)


def test_reader_open_errors_are_source_errors(tmp_path: Path) -> None:
    reader = make_reader(SourceSpec("c1", str(tmp_path / "nope.avi")), threading.Event())
    with pytest.raises(SourceError, match=r"camera c1: cannot open .*nope.avi: no such file"):
        reader.open()
    reader.close()
    bad = tmp_path / "bad.avi"
    bad.write_bytes(b"not a video at all" * 100)
    reader = make_reader(SourceSpec("c1", str(bad)), threading.Event())
    with pytest.raises(SourceError, match="camera c1: "):
        reader.open()
        reader.read()
    reader.close()
