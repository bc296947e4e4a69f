"""Config sections -> the plain settings each stage takes (no threads started here)."""

from __future__ import annotations

from agent.config import AgentConfig, CameraConfig, DecisionConfig, resolve_secret
from agent.decision import DecisionRules
from agent.modelcard import ModelCard, SeriesModelCard
from agent.publisher import BrokerSettings
from agent.sources import SourceSpec
from agent.trigger import (
    Box,
    CommandTrigger,
    ContinuousTrigger,
    IntervalTrigger,
    PresenceSettings,
    PresenceTrigger,
    Trigger,
)

__all__ = [
    "broker_settings",
    "camera_rules",
    "decision_rules",
    "per_part",
    "roi_box",
    "source_spec",
    "trigger_for",
]


def broker_settings(config: AgentConfig) -> BrokerSettings:
    """Resolves the password here, at start: a missing secret is a config error before anything runs."""
    mqtt = config.mqtt
    tls = mqtt.tls
    password = resolve_secret(mqtt.password, "mqtt.password") if mqtt.password is not None else None
    return BrokerSettings(
        host=mqtt.host,
        port=mqtt.port,
        client_id=mqtt.client_id or f"inspect-agent-{config.device_id}",
        keepalive_s=mqtt.keepalive_s,
        username=mqtt.username,
        password=password,
        tls=tls is not None,
        tls_ca_file=str(tls.ca_file) if tls and tls.ca_file else None,
        tls_cert_file=str(tls.cert_file) if tls and tls.cert_file else None,
        tls_key_file=str(tls.key_file) if tls and tls.key_file else None,
        tls_insecure=bool(tls and tls.insecure),
        reconnect_min_s=mqtt.reconnect_min_s,
        reconnect_max_s=mqtt.reconnect_max_s,
        qos_events=mqtt.qos_events,
        max_queued=mqtt.max_queued,
    )


def source_spec(camera_id: str, camera: CameraConfig) -> SourceSpec:
    return SourceSpec(
        camera=camera_id,
        source=camera.source,
        width=camera.width,
        height=camera.height,
        fps=camera.fps,
        fourcc=camera.fourcc,
        loop=camera.loop,
        realtime=camera.realtime,
        reduce=camera.reduce,
        reconnect_min_s=camera.reconnect_min_s,
        reconnect_max_s=camera.reconnect_max_s,
        stall_timeout_s=camera.stall_timeout_s,
    )


def roi_box(camera: CameraConfig) -> Box | None:
    """The ROI in the pixels of the frames the source delivers (``reduce`` shrinks them, not the config)."""
    roi, r = camera.roi, camera.reduce
    if roi is None:
        return None
    x, y = roi.x // r, roi.y // r
    return (x, y, max(1, (roi.x + roi.width) // r - x), max(1, (roi.y + roi.height) // r - y))


def trigger_for(camera: CameraConfig) -> Trigger:
    roi = roi_box(camera)
    trigger = camera.trigger
    if trigger.mode == "continuous":
        return ContinuousTrigger(roi)
    if trigger.mode == "interval":
        return IntervalTrigger(trigger.interval_ms, roi)
    if trigger.mode == "command":
        return CommandTrigger(roi)
    presence = trigger.presence
    settings = PresenceSettings(
        direction=presence.direction,
        min_area_fraction=presence.min_area_fraction,
        centre_tolerance=presence.centre_tolerance,
        crop_scale=presence.crop_scale,
    )
    return PresenceTrigger(settings, roi)


def decision_rules(
    card: ModelCard | SeriesModelCard, decision: DecisionConfig, per_part: bool = False
) -> DecisionRules:
    """``per_part``: presence and command triggers give one verdict per part or request, so "consecutive"
    would tie separate parts together; min_consecutive applies to continuous and interval modes only."""
    return DecisionRules.from_card(
        card.thresholds.defect,
        card.thresholds.per_label,
        decision.sensitivity,
        decision.thresholds,
        1 if per_part else decision.min_consecutive,
        decision.cooldown_s,
    )


def per_part(camera: CameraConfig) -> bool:
    return camera.trigger.mode in ("presence", "command")


def camera_rules(card: ModelCard, config: AgentConfig, camera_id: str) -> DecisionRules:
    """The rules in force for one camera: its merged decision section, per part or per frame stream."""
    return decision_rules(card, config.decision_for(camera_id), per_part(config.cameras[camera_id]))
