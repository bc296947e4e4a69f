"""A small MJPEG-over-HTTP server for tests: a camera that can be unplugged and plugged back in.

    server = MjpegServer([frame0, frame1, ...], fps=20).start()
    cap = cv2.VideoCapture(server.url, cv2.CAP_FFMPEG)
    server.stop()   # listening socket and every open stream closed: clients see the stream die
    server.start()  # same port again

Each GET of ``/stream.mjpg`` (any path works) gets ``multipart/x-mixed-replace; boundary=frame`` with one
JPEG part per frame, cycling through the frames at ``fps``. ``pause()`` keeps connections open but stops
sending (a hung camera); ``per_connection`` closes each connection after that many frames (a flapping one).
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import cv2
import numpy as np

__all__ = ["MjpegServer"]

BOUNDARY = "frame"


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    owner: MjpegServer


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: object) -> None:  # keep test output quiet
        pass

    def do_GET(self) -> None:
        owner = self.server.owner
        owner._track(self.connection, add=True)
        try:
            self.send_response(200)
            self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY}")
            self.send_header("Cache-Control", "no-cache")
            self.send_header("Connection", "close")
            self.end_headers()
            owner._stream(self.wfile)
        except OSError:
            pass  # the client went away, or stop() closed the socket under us
        finally:
            owner._track(self.connection, add=False)
            self.close_connection = True


class MjpegServer:
    """Serve ``frames`` (BGR uint8 images) as an endless MJPEG stream on 127.0.0.1."""

    def __init__(
        self, frames: Sequence[np.ndarray], fps: float = 20.0, port: int = 0, per_connection: int = 0
    ) -> None:
        if not frames:
            raise ValueError("MjpegServer needs at least one frame")
        self.jpegs = [_encode(f) for f in frames]
        self.fps = fps
        self.port = port
        self.per_connection = per_connection
        self.connections_served = 0
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._conns: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._running = threading.Event()
        self._resumed = threading.Event()
        self._resumed.set()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/stream.mjpg"

    def start(self) -> MjpegServer:
        """Listen (again) on ``self.port``; port 0 picks a free one the first time and keeps it after."""
        if self._server is not None:
            return self
        server = _Server(("127.0.0.1", self.port), _Handler)
        server.owner = self
        self.port = server.server_address[1]
        self._server = server
        self._running.set()
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="mjpeg-server", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening and cut every open stream, as an unplugged camera would."""
        server, self._server = self._server, None
        if server is None:
            return
        self._running.clear()
        self._resumed.set()
        server.shutdown()
        server.server_close()
        with self._lock:
            conns = list(self._conns)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        deadline = time.monotonic() + 5
        while self._conns and time.monotonic() < deadline:  # handler threads notice and leave
            time.sleep(0.01)

    def pause(self) -> None:
        """Keep connections open but send nothing: a camera that hangs without disconnecting."""
        self._resumed.clear()

    def resume(self) -> None:
        self._resumed.set()

    def __enter__(self) -> MjpegServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _track(self, conn: socket.socket, add: bool) -> None:
        with self._lock:
            if add:
                self._conns.add(conn)
                self.connections_served += 1
            else:
                self._conns.discard(conn)

    def _stream(self, wfile: object) -> None:
        write = wfile.write  # type: ignore[attr-defined]
        flush = wfile.flush  # type: ignore[attr-defined]
        period = 1.0 / self.fps
        start = time.monotonic()
        sent = 0
        while self._running.is_set():
            self._resumed.wait()
            if not self._running.is_set():
                return
            jpeg = self.jpegs[sent % len(self.jpegs)]
            header = f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n\r\n"
            write(header.encode("ascii") + jpeg + b"\r\n")
            flush()
            sent += 1
            if self.per_connection and sent >= self.per_connection:
                return
            delay = start + sent * period - time.monotonic()  # on a schedule, so the rate does not drift
            if delay > 0:
                time.sleep(delay)
            else:
                start = time.monotonic() - sent * period  # fell behind (paused): restart the schedule


def _encode(frame: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, 95])
    if not ok:
        raise ValueError(f"cannot JPEG-encode a frame of shape {frame.shape}")
    return buf.tobytes()
