"""MQTT commands -> actions on the running agent, each answered on ``cmd/<name>/reply``.

A command that cannot be parsed or names an unknown camera gets ``ok: false`` with one line
saying why; nothing a subscriber sends can stop the agent.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent.bundle import load_bundle
from agent.commands import (
    Command,
    CommandError,
    Pause,
    Reload,
    Resume,
    SetThreshold,
    Snapshot,
    error_reply,
    make_reply,
    parse_command,
)
from agent.config import ConfigError, load_config
from agent.messages import new_event_id
from agent.modelcard import card_path_for
from agent.render import annotate, encode_jpeg
from agent.status import InspectError
from agent.trigger import CommandTrigger
from agent.wiring import camera_rules, roi_box

if TYPE_CHECKING:
    from agent.service import Agent

__all__ = ["CommandHandler"]

log = logging.getLogger("agent.commands")


class CommandHandler:
    def __init__(self, agent: Agent) -> None:
        self.agent = agent

    def handle(self, name: str, payload: bytes) -> None:
        publisher = self.agent.publisher
        assert publisher is not None
        try:
            command = parse_command(name, payload)
        except CommandError as exc:
            log.warning("command %s rejected: %s", exc.command, exc)
            publisher.reply(exc.command, error_reply(exc))
            return
        try:
            result = self._run(command)
        except (CommandError, InspectError) as exc:
            log.warning("command %s failed: %s", command.name, exc)
            reply = make_reply(command.name, command.request_id, ok=False, error=str(exc))
            publisher.reply(command.name, reply)
            return
        log.info("command %s done: %s", command.name, result)
        publisher.reply(command.name, make_reply(command.name, command.request_id, result=result))

    def _cameras(self, command: Command, camera: str | None) -> list[str]:
        workers = self.agent.workers
        if camera is None:
            return list(workers)
        if camera not in workers:
            known = ", ".join(workers) or "none"
            message = f"unknown camera {camera!r} (cameras: {known})"
            raise CommandError(command.name, message, command.request_id)
        return [camera]

    def _run(self, command: Command) -> dict[str, Any]:
        if isinstance(command, Snapshot):
            return self._snapshot(command)
        if isinstance(command, (Pause, Resume)):
            cameras = self._cameras(command, command.camera)
            for camera in cameras:
                self.agent.workers[camera].paused = isinstance(command, Pause)
            self.agent.mark_state_dirty()
            return {"cameras": cameras, "paused": isinstance(command, Pause)}
        if isinstance(command, SetThreshold):
            assert self.agent.model is not None
            card = self.agent.model.bundle.card
            known = ["defect", *(label for label in card.labels if label != card.good_label)]
            if command.label not in known:
                message = f"unknown label {command.label!r} (labels: {', '.join(known)})"
                raise CommandError(command.name, message, command.request_id)
            changed = {}
            for camera in self._cameras(command, command.camera):
                decider = self.agent.workers[camera].decider
                decider.rules = decider.rules.with_threshold(command.label, command.value)
                changed[camera] = {"defect": decider.rules.defect_threshold, **decider.rules.label_thresholds}
            return {"thresholds": changed}
        if isinstance(command, Reload):
            return self._reload(command)
        raise CommandError(command.name, f"command {command.name!r} is not handled", command.request_id)

    def _snapshot(self, command: Snapshot) -> dict[str, Any]:
        agent = self.agent
        assert agent.publisher is not None
        images = []
        for camera in self._cameras(command, command.camera):
            worker = agent.workers[camera]
            if isinstance(worker.trigger, CommandTrigger):
                worker.trigger.request()  # command-triggered cameras also inspect on a snapshot
            frame = worker.last_frame or agent.grabbers[camera].latest(-1, timeout=2.0)
            if frame is None:
                raise CommandError(command.name, f"camera {camera} has no frame yet", command.request_id)
            roi = roi_box(agent.config.cameras[camera])
            image = frame.image
            if command.annotated:
                image = annotate(frame.image, False, f"{camera} snapshot", roi, None)
            jpeg = encode_jpeg(image, agent.config.images.max_side, agent.config.images.jpeg_quality)
            snapshot_id = "snapshot-" + new_event_id(agent.config.device_id, camera, frame.index, time.time())
            agent.publisher.publish_image(camera, snapshot_id, jpeg.data)
            images.append(
                {
                    "camera": camera,
                    "topic": agent.publisher.topics.image(camera, snapshot_id),
                    "width": jpeg.width,
                    "height": jpeg.height,
                    "bytes": len(jpeg.data),
                }
            )
        return {"images": images}

    def _reload(self, command: Reload) -> dict[str, Any]:
        """Re-read the config file and apply it: a new model bundle is loaded beside the old one and swapped,
        decision settings apply at once, changed/added/removed cameras and sensor groups are restarted/
        started/stopped. Sections the running connections depend on (device_id, mqtt, images, outbox,
        logging) need a restart: they are reported and kept as they run. Everything that can fail (the file,
        a model) is loaded before anything running is touched."""
        agent = self.agent
        if agent.config_path is None:
            message = "the agent was not started from a config file"
            raise CommandError(command.name, message, command.request_id)
        try:
            config = load_config(agent.config_path)
        except ConfigError as exc:
            agent.last_error = f"reload rejected, running config kept: {exc}"
            agent.mark_state_dirty()
            raise
        old = agent.config
        restart_required = [k for k in _RESTART_SECTIONS if getattr(config, k) != getattr(old, k)]
        config = config.model_copy(update={k: getattr(old, k) for k in restart_required})
        if agent.model is None and config.cameras != old.cameras:
            restart_required.append("cameras")  # a sensors-only agent has no image model to run them with
            config = config.model_copy(update={"cameras": old.cameras})
        bundle = agent.model.bundle if agent.model is not None else None
        try:
            if bundle is not None and (
                config.model != old.model or not _same_file(bundle.card.tflite_sha256, config.model.path)
            ):
                bundle = load_bundle(config.model.path, config.model.threads)  # beside the old one
            replaced = [
                g for g, running in agent.sensors.items()
                if g in config.sensors
                and not _same_file(running.bundle.card.tflite_sha256, config.sensors[g].model)
            ]  # fmt: skip
            groups = {
                g: (agent.sensor_group(config, g) if _runs(config, g) else None)
                for g in sorted(set(_changed_groups(config, old)) | set(replaced))
            }
        except InspectError as exc:
            agent.last_error = f"reload rejected, running config kept: {exc}"
            agent.mark_state_dirty()
            raise
        if agent.model is not None and bundle is not None and bundle is not agent.model.bundle:
            agent.model.swap(bundle)
        agent.config = config
        changed = sorted(
            c for c in set(config.cameras) | set(old.cameras)
            if _source_side(config.cameras.get(c)) != _source_side(old.cameras.get(c))
        )  # fmt: skip
        # What actually stops or starts (a section disabled before and after changes nothing that runs).
        cameras_restarted = [c for c in changed if c in agent.workers or _enabled(config.cameras, c)]
        sensors_restarted = [g for g, group in groups.items() if group is not None or g in agent.sensors]
        for camera in changed:
            agent.stop_camera(camera)
            if camera in config.cameras:
                agent.start_camera(camera, config.cameras[camera])
        if bundle is not None:
            for camera, worker in agent.workers.items():
                worker.decider.rules = camera_rules(bundle.card, config, camera)
        for group_id, group in groups.items():
            agent.replace_sensors(group_id, group)
        for group_id, running in agent.sensors.items():
            running.worker.decider.rules = running.rules(config.sensor_decision(group_id))
        agent.last_error = None
        agent.mark_state_dirty()
        return {
            "model_sha256": bundle.card.tflite_sha256 if bundle is not None else None,
            "cameras_restarted": cameras_restarted,
            "sensors_restarted": sensors_restarted,
            "restart_required": restart_required,
        }


def _enabled(sections: dict[str, Any], key: str) -> bool:
    return key in sections and bool(sections[key].enabled)


def _runs(config: Any, group_id: str) -> bool:
    return _enabled(config.sensors, group_id)


def _changed_groups(config: Any, old: Any) -> list[str]:
    """Sensor groups whose source side changed (decision settings apply in place, without a restart)."""
    return sorted(
        g for g in set(config.sensors) | set(old.sensors)
        if _source_side(config.sensors.get(g)) != _source_side(old.sensors.get(g))
    )  # fmt: skip


_RESTART_SECTIONS = ("device_id", "mqtt", "images", "outbox", "logging")


def _source_side(section: Any) -> Any:
    """A camera's or sensor group's settings without its decision section, which applies without a restart."""
    return None if section is None else section.model_copy(update={"decision": None})


def _same_file(sha256: str, model_path: Path) -> bool:
    """Whether the card beside ``model_path`` still describes the running model (a bundle copied over the
    old one under the same path is a new model). Only the card's recorded hash is read: the full load, which
    checks the file against it, follows when it differs."""
    try:
        text = card_path_for(model_path).read_text()
        return bool(json.loads(text).get("tflite_sha256") == sha256)
    except (OSError, ValueError, AttributeError):
        return False
