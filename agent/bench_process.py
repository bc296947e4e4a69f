"""What the pipeline benchmarks share: the agent's config and process, what it costs, what it publishes.

- :func:`write_agent_config`: one camera on a video file, continuous trigger with an ROI;
- :class:`MeasuredProcess`: a child process sampled from ``/proc`` (CPU seconds, RSS, open fds);
- :class:`Listener`: a subscriber that stamps every result on arrival (capture-to-publish latency,
  frames/s) and keeps the last ``stats`` and ``summary`` messages;
- :func:`figures`: one run's arrivals and samples -> :class:`RunFigures`.

Linux only (``/proc``); the measured programs are separate processes so that their CPU and RSS are
their own and not the benchmark's.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import paho.mqtt.client as mqtt
import yaml
from paho.mqtt.enums import CallbackAPIVersion

from agent.status import ExitStatus, InspectError

__all__ = [
    "CAMERA",
    "PREFIX",
    "Arrival",
    "Listener",
    "MeasuredProcess",
    "ProcSample",
    "RunFigures",
    "figures",
    "proc_sample",
    "published_results",
    "python_module",
    "write_agent_config",
]

PREFIX = "bench"
CAMERA = "line1"
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
_PAGE = os.sysconf("SC_PAGE_SIZE")


@dataclass(frozen=True)
class ProcSample:
    mono: float
    cpu_s: float  # user + system since the process started
    rss_mb: float
    fds: int


def proc_sample(pid: int) -> ProcSample | None:
    """One reading of ``/proc/<pid>``; None once the process has gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        pages = int(Path(f"/proc/{pid}/statm").read_text().split()[1])
        fds = len(os.listdir(f"/proc/{pid}/fd"))
    except (OSError, ValueError, IndexError):
        return None
    fields = stat.rsplit(")", 1)[1].split()  # after the command name, which may hold spaces
    utime, stime = int(fields[11]), int(fields[12])  # fields 14 and 15 of proc(5)
    return ProcSample(time.monotonic(), (utime + stime) / _CLOCK_TICKS, pages * _PAGE / 2**20, fds)


def write_agent_config(
    path: Path,
    port: int,
    video: Path,
    roi: tuple[int, int, int, int],
    model: Path,
    threads: int,
    *,
    device: str,
    realtime: bool = False,
    loop: bool = False,
    fps: float | None = None,
    cooldown_s: float = 1.0,
    reduce: int = 1,
) -> Path:
    """The agent's YAML for one camera on ``video`` with the continuous trigger (every frame inspected).

    ``cooldown_s``: at most one NG event (annotated JPEG, image store, outbox) per this many seconds, as a
    continuous-trigger line would be set up; 0 makes every NG frame an event. Stats go out only at
    shutdown (one message over the whole run: its per-stage percentiles cover every frame); the images
    and the outbox live beside the config, named after ``device`` (one per run).
    """
    camera: dict[str, Any] = {
        "source": str(video.resolve()),
        "realtime": realtime,
        "loop": loop,
        "roi": dict(zip(("x", "y", "width", "height"), roi, strict=True)),
        "trigger": {"mode": "continuous"},
    }
    if fps is not None:
        camera["fps"] = fps
    if reduce != 1:
        camera["reduce"] = reduce
    config = {
        "device_id": device,
        "mqtt": {"host": "127.0.0.1", "port": port, "prefix": PREFIX, "stats_interval_s": 3600},
        "model": {"path": str(model.resolve()), "threads": threads},
        "cameras": {CAMERA: camera},
        "decision": {"cooldown_s": cooldown_s},
        "images": {"dir": str(path.parent / f"{device}-images"), "max_count": 200},
        # Each run its own outbox: two agents on one SQLite outbox would ack each other's rows.
        "outbox": {"path": str(path.parent / f"{device}-outbox.sqlite3")},
        "logging": {"level": "WARNING"},
    }
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


@dataclass(frozen=True)
class Arrival:
    mono: float
    wall: float
    payload: dict[str, Any]


@dataclass
class _Inbox:
    results: list[Arrival] = field(default_factory=list)
    stats: dict[str, Any] | None = None
    summary: dict[str, Any] | None = None


class Listener:
    """Subscribes to ``bench/#`` on the local broker; :meth:`reset` before each run."""

    def __init__(self, host: str, port: int, timeout: float = 10.0) -> None:
        self._lock = threading.Lock()
        self._inbox = _Inbox()
        self._subscribed = threading.Event()
        self._client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-listener-{os.getpid()}")
        self._client.on_connect = lambda c, *_: c.subscribe(f"{PREFIX}/#", qos=1)
        self._client.on_subscribe = lambda *_: self._subscribed.set()
        self._client.on_message = self._on_message
        self._client.connect(host, port)
        self._client.loop_start()
        if not self._subscribed.wait(timeout):
            self.close()
            raise InspectError(f"could not subscribe on {host}:{port}", ExitStatus.UNAVAILABLE)

    def _on_message(self, client: mqtt.Client, userdata: object, message: mqtt.MQTTMessage) -> None:
        mono, wall = time.monotonic(), time.time()
        topic = message.topic
        if not topic.endswith(("/result", "/stats", "/summary")):
            return
        payload = json.loads(message.payload)
        with self._lock:
            if topic.endswith("/result"):
                self._inbox.results.append(Arrival(mono, wall, payload))
            elif topic.endswith("/stats"):
                self._inbox.stats = payload
            else:
                self._inbox.summary = payload

    def reset(self) -> None:
        with self._lock:
            self._inbox = _Inbox()

    def take(self) -> _Inbox:
        with self._lock:
            return self._inbox

    def result_count(self) -> int:
        with self._lock:
            return len(self._inbox.results)

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()


class MeasuredProcess:
    """A child process (stdout and stderr to ``log``), sampled every ``every_s`` while it runs."""

    def __init__(
        self, argv: list[str], log: Path, every_s: float = 0.05, env: dict[str, str] | None = None
    ) -> None:
        self.log = log
        self.every_s = every_s
        self.samples: list[ProcSample] = []
        self.spawned = time.monotonic()
        with log.open("wb") as out:
            self.proc = subprocess.Popen(
                argv, stdout=out, stderr=subprocess.STDOUT, env=None if env is None else {**os.environ, **env}
            )

    def sample(self) -> None:
        found = proc_sample(self.proc.pid)
        if found is not None and self.proc.poll() is None:
            self.samples.append(found)

    def wait(self, timeout: float, until: Any = None) -> int:
        """Sample until the process exits (or ``until()`` is true: then SIGTERM it), at most ``timeout`` s."""
        deadline = time.monotonic() + timeout
        while self.proc.poll() is None and time.monotonic() < deadline:
            self.sample()
            if until is not None and until():
                self.proc.terminate()
                break
            time.sleep(self.every_s)
        try:
            return self.proc.wait(max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
            tail = self.log.read_text(errors="replace")[-400:]
            raise InspectError(
                f"{self.log.stem} did not finish within {timeout:.0f} s; its log ends with: {tail}",
                ExitStatus.FAILURE,
            ) from None


@dataclass(frozen=True)
class RunFigures:
    """One measured run of a program over a video: what it delivered and what it cost."""

    program: str  # agent, naive, baseline (another checkout's agent), agent-reduce<N> (reduced decode)
    threads: int
    frames_in: int  # frames in the source
    published: int  # results the program says it published (the agent's closing stats, the naive summary)
    unsent: int  # MQTT messages that could not be sent (QoS 0 before the first connect), agent only
    results: int  # results received on MQTT: published - unsent
    seconds: float  # first to last result received
    fps: float
    cpu_percent: float  # over the same window; 100 = one core busy
    rss_mb: float  # highest during the window
    startup_s: float  # process start -> first result received
    latency_p50_ms: float  # capture -> result received by a subscriber
    latency_p99_ms: float
    stages_ms: dict[str, dict[str, float]]  # per stage p50/p99 as the program reported them


def published_results(stats: dict[str, Any] | None) -> tuple[int, int]:
    """Results the agent published, and messages it could not send (results are QoS 0: one published before
    the first connection is up is dropped and counted), from its closing stats; (-1, -1) without one."""
    if not stats:
        return -1, -1
    return int(stats["cameras"][CAMERA]["parts"]), int(stats["mqtt"]["publish_failed"])


def _capture_wall(payload: dict[str, Any]) -> float:
    """The naive loop sends the capture time exactly; the agent's ``ts`` is truncated to milliseconds."""
    if "capture_wall" in payload:
        return float(payload["capture_wall"])
    return datetime.fromisoformat(str(payload["ts"]).replace("Z", "+00:00")).timestamp()


def _window_cpu(samples: list[ProcSample], start: float, end: float) -> tuple[float, float]:
    """CPU percent and peak RSS over the samples inside [start, end] (all samples if too few fall inside)."""
    inside = [s for s in samples if start <= s.mono <= end]
    if len(inside) < 2:
        inside = samples
    if len(inside) < 2:
        return 0.0, max((s.rss_mb for s in samples), default=0.0)
    first, last = inside[0], inside[-1]
    cpu = 100.0 * (last.cpu_s - first.cpu_s) / max(last.mono - first.mono, 1e-6)
    return cpu, max(s.rss_mb for s in inside)


def figures(
    program: str,
    threads: int,
    frames_in: int,
    published: int,
    process: MeasuredProcess,
    arrivals: list[Arrival],
    stages_ms: dict[str, dict[str, float]],
    unsent: int = 0,
) -> RunFigures:
    if not arrivals:
        tail = process.log.read_text(errors="replace")[-600:]
        raise InspectError(
            f"{program}: no result was received; its log ends with: {tail}", ExitStatus.FAILURE
        )
    first, last = arrivals[0], arrivals[-1]
    seconds = last.mono - first.mono
    latency = np.asarray([(a.wall - _capture_wall(a.payload)) * 1000 for a in arrivals])
    cpu, rss = _window_cpu(process.samples, first.mono, last.mono)
    return RunFigures(
        program=program,
        threads=threads,
        frames_in=frames_in,
        published=published,
        unsent=unsent,
        results=len(arrivals),
        seconds=seconds,
        fps=(len(arrivals) - 1) / seconds if seconds > 0 else 0.0,
        cpu_percent=cpu,
        rss_mb=rss,
        startup_s=first.mono - process.spawned,
        latency_p50_ms=float(np.percentile(latency, 50)),
        latency_p99_ms=float(np.percentile(latency, 99)),
        stages_ms=stages_ms,
    )


def python_module(module: str, *args: str) -> list[str]:
    """argv running ``python -m module`` with this interpreter (and so this PYTHONPATH and venv)."""
    return [sys.executable, "-m", module, *args]
