"""The JSON payloads the agent publishes over MQTT, and the topics they go to.

The models are the contract: ``scripts/gen_schemas.py`` turns them into the JSON Schemas in
``docs/schemas/mqtt/`` and ``docs/mqtt.md`` explains them. Nothing here imports paho; the
publisher (``agent/publisher.py``) serialises these with ``model_dump_json``.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "SCHEMA_VERSION",
    "CameraState",
    "CameraStats",
    "ChannelContribution",
    "Event",
    "FrameInfo",
    "HeatmapStats",
    "ImageRef",
    "LatencyStat",
    "ModelInfo",
    "ModelRef",
    "MqttStats",
    "OutboxStats",
    "ProcessStats",
    "Region",
    "Reply",
    "Result",
    "SensorEvent",
    "SensorWindow",
    "State",
    "Stats",
    "Topics",
    "check_topic_id",
    "iso_ts",
    "new_event_id",
]

SCHEMA_VERSION = 1
"""Version of every payload on this page; the retained State announces it. Bumped on a breaking change."""

_TS_PATTERN = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$"
_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")

Timestamp = Annotated[
    str,
    Field(pattern=_TS_PATTERN, description="ISO 8601 UTC with milliseconds, e.g. 2026-01-31T08:15:02.123Z."),
]
Unit = Annotated[float, Field(ge=0.0, le=1.0)]
Count = Annotated[int, Field(ge=0)]
Verdict = Literal["OK", "NG"]
Rect = Annotated[list[int], Field(min_length=4, max_length=4, description="[x, y, w, h] in frame pixels.")]
Sha256 = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$", description="Hex SHA-256.")]


class _Msg(BaseModel):
    model_config = ConfigDict(extra="forbid")


def iso_ts(wall_time: float) -> str:
    """``time.time()`` -> '2026-01-31T08:15:02.123Z' (UTC, milliseconds, truncated)."""
    stamp = datetime.fromtimestamp(wall_time, tz=timezone.utc)
    return stamp.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def new_event_id(device: str, camera: str, seq: int, wall_time: float) -> str:
    """A stable, topic-safe dedup key: ``<device>-<camera>-<seq>-<ms since epoch, base 36>``.

    ``seq`` restarts with the agent; the millisecond stamp keeps ids unique across restarts.
    Generate it once per event and keep it: a re-sent event must carry the same id.
    """
    millis, digits = int(wall_time * 1000), ""
    while True:
        millis, rem = divmod(millis, 36)
        digits = "0123456789abcdefghijklmnopqrstuvwxyz"[rem] + digits
        if millis == 0:
            break
    return f"{device}-{camera}-{seq}-{digits}"


def check_topic_id(value: str, what: str) -> str:
    """Refuse a device/camera/event id that would break a topic (``/``, ``+``, ``#``, spaces, empty)."""
    if not _ID_RE.match(value):
        raise ValueError(
            f"{what} must be letters, digits, '_', '.', '-' (starting with a letter or digit), got {value!r}"
        )
    return value


class Topics:
    """Every topic of one device, built in one place: ``<prefix>/<device>/...``."""

    def __init__(self, prefix: str, device: str) -> None:
        if not prefix or any(c in prefix for c in "+#") or prefix.startswith("/") or prefix.endswith("/"):
            raise ValueError(f"MQTT prefix must be non-empty, without '+', '#' or edge '/', got {prefix!r}")
        self.base = f"{prefix}/{check_topic_id(device, 'device id')}"
        self.available = f"{self.base}/available"
        self.state = f"{self.base}/state"
        self.stats = f"{self.base}/stats"
        self.cmd_filter = f"{self.base}/cmd/+"
        self.cmd_prefix = f"{self.base}/cmd/"

    def result(self, camera: str) -> str:
        return f"{self.base}/{check_topic_id(camera, 'camera id')}/result"

    def event(self, camera: str) -> str:
        return f"{self.base}/{check_topic_id(camera, 'camera id')}/event"

    def image(self, camera: str, event_id: str, raw: bool = False) -> str:
        topic = (
            f"{self.base}/{check_topic_id(camera, 'camera id')}/image/{check_topic_id(event_id, 'event id')}"
        )
        return topic + "/raw" if raw else topic

    def reply(self, command: str) -> str:
        return f"{self.cmd_prefix}{command}/reply"


# --- state (retained) ------------------------------------------------------------------------------


class ModelInfo(_Msg):
    name: str = Field(description="Model name from the model card.")
    version: str = Field(description="Model version from the model card.")
    sha256: Sha256 = Field(description="SHA-256 of the .tflite file.")
    labels: list[str] = Field(description="Output labels, in output order.")
    quantization: str = Field(description="float32, float16, dynamic or int8.")
    interpreter: str = Field(description="Runtime and version, e.g. 'ai_edge_litert 1.4.0'.")


class CameraState(_Msg):
    status: Literal["starting", "online", "offline", "stalled", "paused"] = Field(
        description="starting: not yet a frame; online: frames flow; offline: source lost, reconnecting; "
        "stalled: connected but no frame for too long; paused: by a pause command."
    )
    source: str = Field(description="Where frames come from, with any credentials removed.")
    error: str | None = Field(default=None, description="Last source error, null when none.")
    last_frame_at: Timestamp | None = Field(
        default=None, description="Time of the last frame, null if none yet."
    )


class State(_Msg):
    """Retained on ``<prefix>/<device>/state``; re-published on every change and every (re)connect."""

    schema_version: int = Field(default=SCHEMA_VERSION, description="Version of all payloads of this device.")
    version: str = Field(description="Agent version.")
    device: str = Field(description="Device id (as in the topic).")
    started_at: Timestamp = Field(description="When the agent started.")
    uptime_s: float = Field(ge=0, description="Seconds since start, at updated_at.")
    model: ModelInfo | None = Field(description="The loaded model, null while none is loaded.")
    config_hash: str = Field(description="First 12 hex digits of the SHA-256 of the running configuration.")
    cameras: dict[str, CameraState] = Field(description="Per camera id.")
    paused: bool = Field(default=False, description="True when inspection is paused for every camera.")
    last_error: str | None = Field(
        default=None, description="Last agent-level error, e.g. a rejected config reload; null when none."
    )
    updated_at: Timestamp = Field(description="When this state was produced.")


# --- stats (periodic) ------------------------------------------------------------------------------


class CameraStats(_Msg):
    fps_in: float = Field(ge=0, description="Frames read per second over the interval.")
    fps_processed: float = Field(ge=0, description="Frames inspected per second over the interval.")
    frames_dropped: Count = Field(description="Frames skipped since start (newest-frame-wins).")
    parts: Count = Field(description="Parts (or frames) inspected since start.")
    ng: Count = Field(description="NG verdicts since start.")
    reconnects: Count = Field(description="Source reconnects since start.")


class LatencyStat(_Msg):
    p50: float = Field(ge=0, description="Median, milliseconds.")
    p99: float = Field(ge=0, description="99th percentile, milliseconds.")
    count: Count = Field(default=0, description="Samples in the interval.")


class OutboxStats(_Msg):
    depth: Count = Field(description="Messages waiting for delivery.")
    evicted: Count = Field(
        description="Messages dropped (oldest first) because the outbox was full, since start."
    )
    write_errors: Count = Field(
        default=0, description="Messages the outbox could not store (full disk, read-only), since start."
    )
    direct: Count = Field(
        default=0, description="Of those, published directly instead: delivered if connected, not durable."
    )


class MqttStats(_Msg):
    reconnects: Count = Field(description="Broker reconnects since start.")
    published: Count = Field(
        default=0, description="Messages sent (QoS 0) or acknowledged (QoS 1) since start."
    )
    publish_failed: Count = Field(
        default=0, description="Messages that could be neither sent nor queued, since start."
    )


class ProcessStats(_Msg):
    cpu_percent: float = Field(ge=0, description="CPU use of the agent over the interval (100 = one core).")
    rss_mb: float = Field(ge=0, description="Resident memory, MiB.")
    temp_c: float | None = Field(default=None, description="SoC temperature, null where not readable.")


class Stats(_Msg):
    """Not retained, every ``interval_s`` on ``<prefix>/<device>/stats``. Counters are totals since start."""

    ts: Timestamp
    device: str
    interval_s: float = Field(gt=0, description="Seconds covered by the rates and percentiles.")
    cameras: dict[str, CameraStats] = Field(description="Per camera id.")
    latency_ms: dict[str, LatencyStat] = Field(
        description="Per stage: trigger, inference, capture_to_result, event_images, capture_to_event."
    )
    outbox: OutboxStats
    mqtt: MqttStats
    process: ProcessStats
    sensors: dict[str, dict[str, Count]] = Field(
        default_factory=dict,
        description="Per sensor group: counters since start (samples, rows, windows, events, and bad input: "
        "non_numeric, nan, missing_field, unknown_topic, late, clock_jumps, gaps, overflow, reconnects).",
    )


# --- per part --------------------------------------------------------------------------------------


class FrameInfo(_Msg):
    width: Count
    height: Count
    index: Count = Field(description="Frame index on this camera since start.")
    source_pos: int | None = Field(
        default=None, description="The source's own frame number (video files), null where it has none."
    )

    @classmethod
    def of(cls, image_shape: tuple[int, ...], index: int, source_pos: int) -> FrameInfo:
        """From a frame's image shape and counters; a negative ``source_pos`` (none) becomes null."""
        return cls(width=image_shape[1], height=image_shape[0], index=index,
                   source_pos=source_pos if source_pos >= 0 else None)  # fmt: skip


class Result(_Msg):
    """One inspected part (or frame), on ``<prefix>/<device>/<camera>/result``."""

    ts: Timestamp = Field(description="Capture time of the frame.")
    seq: Count = Field(description="Per camera, +1 per result since the agent started.")
    camera: str
    part_id: str | None = Field(default=None, description="Part id when the trigger provides one.")
    verdict: Verdict = Field(description="NG when defect_score > threshold (equal is OK).")
    label: str = Field(description="The verdict's label: top defect label when NG, the good label when OK.")
    score: Unit = Field(description="The defect score when NG, p(label) when OK.")
    defect_score: Unit = Field(description="1 - p(good label).")
    threshold: Unit = Field(description="Threshold applied to defect_score.")
    probabilities: dict[str, Unit] = Field(description="Per label.")
    latency_ms: float = Field(ge=0, description="Capture to the result handed to the publisher, ms.")
    part_box: Rect | None = Field(default=None, description="The part's box (presence trigger), else null.")
    frame: FrameInfo | None = Field(default=None, description="The frame the verdict was taken on.")
    model_sha256: str = Field(
        pattern=r"^[0-9a-f]{12}$", description="First 12 hex digits of the model SHA-256."
    )


class Region(_Msg):
    box: Rect
    score: Unit = Field(description="Defect strength in the region (e.g. heatmap peak, detection score).")
    area: Count = Field(description="Defect area in frame pixels (w*h when only a box is known).")
    label: str | None = Field(
        default=None, description="What was found there (a detector's class label); null when not known."
    )


class HeatmapStats(_Msg):
    """Summary of the model's heatmap over the inspected crop (models with a heatmap output)."""

    kind: Literal["defect_map", "class_activation", "anomaly_map"] = Field(
        description="defect_map: trained on defect masks; class_activation: the classifier per location; "
        "anomaly_map: a good-only anomaly model's per-pixel score (normalised, pixel threshold at 0.5)."
    )
    peak: Unit = Field(description="Highest heatmap value, 0..1.")
    mean: Unit = Field(description="Mean heatmap value over the crop, 0..1.")
    area_fraction: Unit = Field(description="Fraction of the crop above the pixel threshold.")
    threshold: Unit = Field(description="The pixel threshold on the same 0..1 scale.")


class ModelRef(_Msg):
    name: str
    version: str
    sha256: Sha256


class ImageRef(_Msg):
    kind: Literal["annotated", "raw"]
    topic: str = Field(description="Full topic the JPEG is published on.")
    width: Count
    height: Count
    bytes: Count = Field(description="JPEG size.")
    content_type: Literal["image/jpeg"] = "image/jpeg"
    sha256: Sha256 = Field(description="SHA-256 of the JPEG bytes.")


class Event(_Msg):
    """One NG part, QoS 1 on ``<prefix>/<device>/<camera>/event``; delivered at least once."""

    event_id: str = Field(pattern=_ID_RE.pattern, description="Dedup key, stable across re-sends.")
    ts: Timestamp = Field(description="Capture time of the frame.")
    seq: Count = Field(description="The Result seq of this part.")
    device: str
    camera: str
    part_id: str | None = None
    verdict: Verdict
    label: str
    score: Unit
    defect_score: Unit
    threshold: Unit
    regions: list[Region] = Field(
        default_factory=list,
        description="Where the defect is, strongest first (at most 5 from a heatmap); empty when the model "
        "has no heatmap or nothing passed its pixel threshold.",
    )
    heatmap: HeatmapStats | None = Field(
        default=None, description="Heatmap statistics; null when the model has no heatmap output."
    )
    roi: Rect | None = Field(default=None, description="Inspected region of the frame, null = whole frame.")
    part_box: Rect | None = Field(default=None, description="The part's box (presence trigger), else null.")
    model: ModelRef
    images: list[ImageRef] = Field(default_factory=list, description="JPEGs published for this event.")
    frame: FrameInfo


# --- sensor groups (docs/timeseries.md) -----------------------------------------------------------


class SensorWindow(_Msg):
    start: Timestamp = Field(description="Time of the window's first sample.")
    end: Timestamp = Field(description="Time of the window's last sample.")
    samples: Count = Field(description="Samples per channel in the window (the model's window length).")
    sample_rate_hz: float = Field(gt=0, description="The model's sample rate the channels were resampled to.")


class ChannelContribution(_Msg):
    channel: str
    contribution: Unit = Field(
        description="How much the anomaly score drops when this channel alone is replaced by its last "
        "normal stretch (occlusion): 0 = not involved."
    )
    z_max: float = Field(ge=0, description="Largest |standardised value| of the channel in the window.")


class SensorEvent(_Msg):
    """One anomalous sensor window, QoS 1 on ``<prefix>/<device>/<group>/event``; delivered at least once."""

    event_id: str = Field(pattern=_ID_RE.pattern, description="Dedup key, stable across re-sends.")
    ts: Timestamp = Field(description="Time of the window's last sample.")
    seq: Count = Field(description="Per group, +1 per inspected window since the agent started.")
    device: str
    group: str = Field(description="The sensor group id (as in the topic).")
    kind: Literal["sensor"] = Field(default="sensor", description="Tells sensor events from camera events.")
    verdict: Verdict
    label: str = Field(description="The model's anomaly label.")
    score: Unit = Field(description="Anomaly score of the window.")
    threshold: Unit = Field(description="Threshold the score was compared with (NG when greater).")
    window: SensorWindow
    channels: list[ChannelContribution] = Field(
        description="Channels that contributed, largest contribution first (all channels are ranked when "
        "none stands out)."
    )
    model: ModelRef


# --- command replies -------------------------------------------------------------------------------


class Reply(_Msg):
    """On ``<prefix>/<device>/cmd/<name>/reply``, one per command received."""

    request_id: str | None = Field(description="Echo of the command's request_id, null when it had none.")
    command: str = Field(description="The command name.")
    ok: bool
    error: str | None = Field(description="One line saying what was wrong, null when ok.")
    result: dict[str, Any] | None = Field(description="Command-specific result, null when none.")
    ts: Timestamp
