"""The running agent: start every stage, answer commands, publish state and stats, stop cleanly.

    agent = Agent(load_config(path), config_path=path)
    agent.start()          # model, image store, MQTT, one grabber + one inspection thread per camera
    code = agent.run()     # until SIGTERM/SIGINT, or until every source has ended (video files)

Commands arrive on paho's thread and are queued; the main thread runs them between its
housekeeping ticks, so no command ever blocks MQTT traffic or races an inspection.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from pathlib import Path
from typing import Literal

from agent import __version__
from agent.bundle import load_bundle
from agent.config import AgentConfig, CameraConfig, config_hash
from agent.decision import Decider
from agent.events import EventPublisher, ImageOptions
from agent.imagestore import ImageStore, StoreLimits
from agent.messages import CameraState, ModelInfo, State, iso_ts
from agent.outbox import Outbox, OutboxForwarder
from agent.pipeline import CameraCounts, CameraWorker, EventJob, ModelSlot
from agent.publisher import MqttPublisher
from agent.sdnotify import Notifier
from agent.sensors.counters import SensorCounters
from agent.sensors.group import SensorGroup
from agent.service_commands import CommandHandler
from agent.service_health import SystemdHealth
from agent.service_stats import StatsReporter
from agent.sources import Grabber, GrabberStats, redact
from agent.status import ExitStatus
from agent.telemetry import LatencyRecorder
from agent.wiring import broker_settings, camera_rules, roi_box, source_spec, trigger_for

__all__ = ["Agent"]


log = logging.getLogger("agent")

_TICK_S = 0.2
_EVENT_QUEUE = 64  # NG events waiting for JPEG encoding; full = the inspection threads wait


class Agent:
    def __init__(self, config: AgentConfig, config_path: Path | None = None) -> None:
        self.config = config
        self.config_path = config_path
        self.started_wall = time.time()
        self.started_mono = time.monotonic()
        self.latency = LatencyRecorder()
        self.last_error: str | None = None
        self.grabbers: dict[str, Grabber] = {}
        self.workers: dict[str, CameraWorker] = {}
        # Totals since start per camera / sensor group id, kept across restarts by a reload.
        self._camera_counts: dict[str, CameraCounts] = {}
        self._grabber_counts: dict[str, GrabberStats] = {}
        self._sensor_counters: dict[str, SensorCounters] = {}
        self._sensor_seq: dict[str, int] = {}  # last window number of a stopped group
        self.sensors: dict[str, SensorGroup] = {}
        self._stop = threading.Event()
        self._state_dirty = threading.Event()
        self._commands: queue.SimpleQueue[tuple[str, bytes]] = queue.SimpleQueue()
        self._jobs: queue.Queue[EventJob | None] = queue.Queue(maxsize=_EVENT_QUEUE)
        self.model: ModelSlot | None = None
        self.publisher: MqttPublisher | None = None
        self.events: EventPublisher | None = None
        self.outbox: Outbox | None = None
        self.forwarder: OutboxForwarder | None = None
        self._config_stamp = _stamp(config_path)
        self._config_checked = time.monotonic()
        self.notifier = Notifier.from_environment()
        self.health = SystemdHealth(self, self.notifier)

    # --- lifecycle ---------------------------------------------------------------------------------

    def start(self) -> None:
        """Every step raises InspectError/ConfigError with a one-line message; nothing half-started stays."""
        config = self.config
        if config.cameras:  # a sensors-only agent needs no image model
            bundle = load_bundle(config.model.path, config.model.threads)
            self.model = ModelSlot(bundle)
            log.info(
                "model %s v%s (%s, %s, %d threads)",
                bundle.card.name,
                bundle.card.version,
                bundle.card.quantization,
                bundle.model.backend,
                bundle.model.num_threads,
            )
        images = config.images
        limits = StoreLimits(images.max_count, images.max_bytes, images.max_age_days * 86400)
        store = ImageStore(images.dir, limits)
        box = config.outbox
        assert box.path is not None  # filled in by AgentConfig
        sync: Literal["NORMAL", "FULL"] = "FULL" if box.fsync == "full" else "NORMAL"
        self.outbox = Outbox(box.path, box.max_count, box.max_bytes, sync)
        self.publisher = MqttPublisher(
            broker_settings(config), config.mqtt.prefix, config.device_id, self._on_command
        )
        self.forwarder = OutboxForwarder(self.outbox, self.publisher)
        self.publisher.on_published = self.forwarder.on_published  # before connect(): no ack is missed
        self.commands = CommandHandler(self)
        self.stats = StatsReporter(self)
        self.events = EventPublisher(
            config.device_id,
            self._jobs,
            self.forwarder,  # every image and event goes through the durable outbox
            store,
            ImageOptions(images.max_side, images.jpeg_quality, images.publish_raw),
            self.latency,
        )
        self.store = store
        self.publisher.connect()
        self.forwarder.start()  # replays what a previous run left, in order, once connected
        self.events.start()
        for camera_id, camera in config.cameras.items():
            self.start_camera(camera_id, camera)
        for group_id, group in config.sensors.items():
            if group.enabled:
                self.replace_sensors(group_id, self.sensor_group(config, group_id))
        self.publish_state()

    def sensor_group(self, config: AgentConfig, group_id: str) -> SensorGroup:
        """One sensor group built, not started: its model loads here, so a bad one fails before anything
        stops. It counts on from the group it replaces (or an earlier one with its id)."""
        assert self.forwarder is not None
        settings, decision = config.sensors[group_id], config.sensor_decision(group_id)
        counters = self._sensor_counters.setdefault(group_id, SensorCounters())
        return SensorGroup(
            config.device_id, group_id, settings, decision, self.forwarder, self.latency, counters
        )

    def replace_sensors(self, group_id: str, group: SensorGroup | None) -> None:
        """Stop the running group (if any) and start ``group`` (if any) in its place; window numbers go on."""
        assert self.publisher is not None
        running = self.sensors.pop(group_id, None)
        if running is not None:
            running.stop(timeout=2.0, discard=True)  # its backlog would only delay the new group
            self._sensor_seq[group_id] = running.worker.seq
        if group is not None:
            self.sensors[group_id] = group
            group.start(self.publisher, self._sensor_seq.get(group_id, 0))

    def start_camera(self, camera_id: str, camera: CameraConfig) -> None:
        """A grabber and an inspection thread for one camera (nothing for a disabled one)."""
        assert self.publisher is not None
        if not camera.enabled or self.model is None:
            return
        card = self.model.bundle.card
        grabber = Grabber(source_spec(camera_id, camera), status_listener=self._on_camera_status)
        worker = CameraWorker(
            camera_id,
            grabber,
            trigger_for(camera),
            Decider(camera_rules(card, self.config, camera_id), card.good_label),
            self.model,
            roi_box(camera),
            self.publisher.publish_result,
            self._jobs,
            self.latency,
            self._camera_counts.setdefault(camera_id, CameraCounts()),
        )
        if (before := self._grabber_counts.pop(camera_id, None)) is not None:
            grabber.continue_counts(before)
        self.grabbers[camera_id], self.workers[camera_id] = grabber, worker
        grabber.start()
        worker.start()

    def stop_camera(self, camera_id: str) -> None:
        """Stop one camera's threads (a reload that changed or removed it); its queued events still go out."""
        grabber, worker = self.grabbers.pop(camera_id, None), self.workers.pop(camera_id, None)
        if grabber is not None:
            grabber.stop(timeout=2.0)
        if worker is not None:
            worker.stop(timeout=2.0)
        if grabber is not None:
            self._grabber_counts[camera_id] = grabber.stats()

    def request_stop(self) -> None:
        """Safe from a signal handler."""
        self._stop.set()

    def request_reload(self) -> None:
        """SIGHUP: the same as the ``reload`` command (its reply goes to ``cmd/reload/reply``)."""
        self._commands.put(("reload", b"{}"))

    def run(self) -> int:
        """The main thread's loop; returns the exit code once stopped."""
        assert self.publisher is not None
        while not self._stop.is_set():
            self._tick()
            units = [w.finished for w in self.workers.values()] + [g.finished for g in self.sensors.values()]
            if units and all(units):
                log.info("every source has ended; stopping")
                break
            self._stop.wait(_TICK_S)
        self.shutdown()
        return int(ExitStatus.OK)

    def _tick(self) -> None:
        while True:
            try:
                name, payload = self._commands.get_nowait()
            except queue.Empty:
                break
            self.commands.handle(name, payload)
        for grabber in self.grabbers.values():
            grabber.check_stall()
        self.stats.maybe_publish()
        self.health.tick()
        self._watch_config()
        if self._state_dirty.is_set():
            self._state_dirty.clear()
            self.publish_state()

    def _watch_config(self, every_s: float = 2.0) -> None:
        """An edit of the config file reloads it as SIGHUP does; an invalid edit is rejected, not applied."""
        now = time.monotonic()
        if self.config_path is None or now - self._config_checked < every_s:
            return
        self._config_checked = now
        stamp = _stamp(self.config_path)
        if stamp != self._config_stamp and stamp is not None:
            self._config_stamp = stamp
            log.info("%s changed; reloading", self.config_path)
            self.request_reload()

    def shutdown(self, timeout: float = 4.0) -> None:
        """Finish the current frames, store every queued event, forward (bounded) what the broker can take,
        say offline, disconnect, close the outbox (undelivered rows stay for the next start)."""
        self.notifier.stopping()
        deadline = time.monotonic() + timeout
        for grabber in self.grabbers.values():
            grabber.stop(timeout=1.0)
        for worker in self.workers.values():
            worker.stop(timeout=max(0.1, deadline - time.monotonic()))
        for sensors in self.sensors.values():
            sensors.stop(timeout=max(0.1, deadline - time.monotonic()))
        if self.events is not None:
            self.events.stop(timeout=max(0.5, deadline - time.monotonic()))
        if self.forwarder is not None:
            self.forwarder.stop(timeout=max(0.5, deadline - time.monotonic() - 1.0))
        self.stats.maybe_publish(force=True)
        if self.publisher is not None:
            self.publisher.stop(timeout=max(1.0, deadline - time.monotonic()))
        if self.outbox is not None:
            self.outbox.close()
        log.info("stopped after %.1f s", time.monotonic() - self.started_mono)

    # --- state -------------------------------------------------------------------------------------

    def _on_command(self, name: str, payload: bytes) -> None:
        self._commands.put((name, payload))

    def _on_camera_status(self, stats: GrabberStats) -> None:
        if stats.status in ("offline", "stalled"):
            log.warning("camera %s %s: %s", stats.camera, stats.status, stats.last_error)
        else:
            log.info("camera %s %s", stats.camera, stats.status)
        self._state_dirty.set()

    def mark_state_dirty(self) -> None:
        self._state_dirty.set()

    def state(self) -> State:
        cameras = {}
        for camera_id, grabber in self.grabbers.items():
            grabbed = grabber.stats()
            worker = self.workers[camera_id]
            status = {"ended": "offline", "stopped": "offline"}.get(grabbed.status, grabbed.status)
            last = worker.last_frame
            cameras[camera_id] = CameraState(
                status="paused" if worker.paused else status,  # type: ignore[arg-type]
                source=redact(self.config.cameras[camera_id].source),
                error=grabbed.last_error,
                last_frame_at=iso_ts(last.wall_time) if last else None,
            )
        now = time.time()
        return State(
            version=__version__,
            device=self.config.device_id,
            started_at=iso_ts(self.started_wall),
            uptime_s=round(time.monotonic() - self.started_mono, 3),
            model=self._model_info(),
            config_hash=config_hash(self.config),
            cameras=cameras,
            paused=bool(self.workers) and all(w.paused for w in self.workers.values()),
            last_error=self.last_error,
            updated_at=iso_ts(now),
        )

    def _model_info(self) -> ModelInfo | None:
        """The image model; None when only sensor groups run (their models are in their events)."""
        if self.model is None:
            return None
        card, model = self.model.bundle.card, self.model.bundle.model
        return ModelInfo(
            name=card.name,
            version=card.version,
            sha256=card.tflite_sha256,
            labels=card.labels,
            quantization=card.quantization,
            interpreter=model.backend,
        )

    def publish_state(self) -> None:
        if self.publisher is not None:
            self.publisher.publish_state(self.state())


def _stamp(path: Path | None) -> tuple[int, int] | None:
    """(mtime ns, size) of the config file, None when it cannot be read (mid-write, removed)."""
    try:
        st = path.stat() if path is not None else None
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size) if st is not None else None
