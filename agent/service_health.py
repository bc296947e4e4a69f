"""What the agent tells systemd: READY, WATCHDOG only while frames flow, STATUS lines."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from agent.sdnotify import Notifier

if TYPE_CHECKING:
    from agent.service import Agent

__all__ = ["SystemdHealth"]

_STATUS_EVERY_S = 10.0


class SystemdHealth:
    """Called on every tick of the main thread.

    READY goes out once the first frame has been processed, so ``systemctl start`` returns when the
    agent really inspects. WATCHDOG goes out only while every camera's frames reach its inspection
    thread, or, for a camera delivering none, while its grabber thread is alive and retrying (an
    unplugged camera is not a hung agent): a hung inspection thread or a wedged capture stops the
    pings and systemd restarts the service after ``WatchdogSec``.
    """

    def __init__(self, agent: Agent, notifier: Notifier) -> None:
        self.agent = agent
        self.notifier = notifier
        self.ready = False
        self._last_index: dict[str, int] = {}  # per camera: the newest frame its thread took
        self._last_flow: dict[str, float] = {}  # per camera: when that last changed
        self._last_watchdog = 0.0
        self._last_status = 0.0

    def tick(self, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        workers = self.agent.workers
        for camera, worker in workers.items():
            index = worker.last_frame.index if worker.last_frame else -1
            if index != self._last_index.get(camera, -1):
                self._last_index[camera], self._last_flow[camera] = index, now
        sensors = self.agent.sensors
        if not self.ready and (
            any(w.frames_processed for w in workers.values())
            or any(g.counters.windows for g in sensors.values())
        ):
            self.ready = True
            self.notifier.ready(f"inspecting: {len(workers)} camera(s), {len(sensors)} sensor group(s)")
        if not self.ready:
            return
        interval = self.notifier.watchdog_interval_s
        due = interval is not None and now - self._last_watchdog >= interval
        if due and interval is not None and all(self._alive(c, now, interval) for c in workers):
            self.notifier.watchdog()
            self._last_watchdog = now
        if now - self._last_status >= _STATUS_EVERY_S:
            self._last_status = now
            parts = sum(w.parts for w in workers.values())
            ng = sum(w.ng for w in workers.values())
            outbox = self.agent.outbox.depth if self.agent.outbox else 0
            self.notifier.status(f"{parts} parts, {ng} NG, outbox {outbox}")

    def _alive(self, camera: str, now: float, window: float) -> bool:
        if now - self._last_flow.get(camera, -1e9) <= 2 * window:
            return True
        grabber = self.agent.grabbers[camera]
        retrying = grabber.status in ("offline", "stalled", "starting")
        return retrying and bool(grabber.thread and grabber.thread.is_alive())
