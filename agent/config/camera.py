"""``cameras.<id>:``: one video source, its capture settings, region of interest and trigger."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from agent.config.base import ConfigModel, FieldError
from agent.config.decision import DecisionConfig

__all__ = [
    "URL_SCHEMES",
    "CameraConfig",
    "PresenceConfig",
    "Roi",
    "SourceKind",
    "TriggerConfig",
    "source_kind",
]

URL_SCHEMES = ("rtsp", "rtsps", "rtmp", "http", "https")
SourceKind = Literal["device", "url", "path"]
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")


def source_kind(source: str) -> SourceKind:
    """Classify a source: "device" (an index like "0" or a /dev/ path), "url" (rtsp/http) or "path"
    (a video file or an image folder)."""
    if source.isdigit() or source.startswith("/dev/"):
        return "device"
    if _SCHEME.match(source):
        return "url"
    return "path"


class Roi(ConfigModel):
    """A rectangle in source pixels; the part of the frame that is inspected."""

    x: int = Field(default=0, ge=0, description="Left edge in pixels.")
    y: int = Field(default=0, ge=0, description="Top edge in pixels.")
    width: int = Field(gt=0, description="Width in pixels.")
    height: int = Field(gt=0, description="Height in pixels.")


class PresenceConfig(ConfigModel):
    """Part-presence trigger: a part crossing the ROI gives one verdict, taken when it is centred."""

    min_area_fraction: float = Field(
        default=0.005,
        gt=0,
        le=1,
        description="Smallest foreground area, as a fraction of the ROI, that is a part.",
    )
    direction: Literal["left_to_right", "right_to_left", "top_to_bottom", "bottom_to_top"] = Field(
        default="left_to_right", description="Direction parts travel through the ROI."
    )
    centre_tolerance: float = Field(
        default=0.15,
        ge=0,
        le=1,
        description="How far the part's centre may be from the ROI centre when it is inspected, "
        "as a fraction of the ROI size.",
    )
    crop_scale: float = Field(
        default=1.5,
        ge=1,
        le=4,
        description="Side of the square crop given to the model, as a multiple of the part's larger side: "
        "match the margin around parts in the training images.",
    )


class TriggerConfig(ConfigModel):
    """When a frame is inspected."""

    mode: Literal["continuous", "interval", "command", "presence"] = Field(
        default="presence",
        description="continuous: every frame; interval: every interval_ms; command: on an MQTT command; "
        "presence: once per part crossing the ROI.",
    )
    interval_ms: int = Field(
        default=1000, ge=1, description="Milliseconds between inspections (interval mode)."
    )
    presence: PresenceConfig = Field(default_factory=PresenceConfig, description="Presence mode settings.")


class CameraConfig(ConfigModel):
    """One camera (or video file, stream or image folder)."""

    source: str = Field(
        min_length=1,
        description='A device index ("0"), a device path (/dev/video0, /dev/v4l/by-id/...), a video file, '
        "an rtsp://, rtmp:// or http(s):// URL, or an image folder. Files and folders are relative to "
        "the config file.",
    )
    enabled: bool = Field(default=True, description="false = configured but not opened.")
    width: int | None = Field(default=None, gt=0, description="Capture width to request from a device.")
    height: int | None = Field(default=None, gt=0, description="Capture height to request from a device.")
    fps: float | None = Field(default=None, gt=0, description="Capture frame rate to request from a device.")
    fourcc: str | None = Field(
        default=None, description="Capture pixel format to request, 4 characters (e.g. MJPG)."
    )
    loop: bool = Field(default=False, description="Video files: start again at the end.")
    realtime: bool = Field(
        default=True, description="Video files: pace at the file's fps (false = as fast as possible)."
    )
    reduce: Literal[1, 2, 4, 8] = Field(
        default=1,
        description="Video files (MJPG) and image folders: decode JPEG frames at 1/2, 1/4 or 1/8 size, "
        "several times cheaper than a full decode and resize (docs/performance.md). Frames, boxes and "
        "event images are then that size; the roi stays in full-size source pixels.",
    )
    reconnect_min_s: float = Field(
        default=0.5, gt=0, description="First delay before reopening a lost source."
    )
    reconnect_max_s: float = Field(default=30.0, gt=0, description="Longest delay between reopen attempts.")
    stall_timeout_s: float = Field(
        default=10.0,
        gt=0,
        description="Live sources: no new frame for this long = 'stalled' in state (a read blocked that long "
        "also times out, after 5 s, and the source is reopened).",
    )
    roi: Roi | None = Field(default=None, description="Region of interest; null = the whole frame.")
    trigger: TriggerConfig = Field(default_factory=TriggerConfig, description="When frames are inspected.")
    decision: DecisionConfig | None = Field(
        default=None,
        description="Overrides of the top-level decision section for this camera: keys given here replace "
        "the top-level ones (thresholds merge per label). After loading it always holds the merged result.",
    )

    @field_validator("source", mode="before")
    @classmethod
    def _index_as_text(cls, value: Any) -> Any:
        # `source: 0` in YAML is an int; it means the device index "0".
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value

    @field_validator("source")
    @classmethod
    def _check_source(cls, value: str) -> str:
        match = _SCHEME.match(value)
        if match and match.group(1).lower() not in URL_SCHEMES:
            raise ValueError(
                f"unsupported URL scheme {match.group(1)!r}; use one of {', '.join(URL_SCHEMES)}"
            )
        return value

    @field_validator("fourcc")
    @classmethod
    def _check_fourcc(cls, value: str | None) -> str | None:
        if value is not None and (len(value) != 4 or not value.isascii()):
            raise ValueError("must be 4 ASCII characters, e.g. MJPG or YUYV")
        return value

    @model_validator(mode="after")
    def _check(self) -> CameraConfig:
        if self.reconnect_min_s > self.reconnect_max_s:
            raise FieldError("reconnect_min_s", f"must not exceed reconnect_max_s ({self.reconnect_max_s:g})")
        if self.reduce != 1 and self.source_kind in ("device", "url"):
            raise FieldError(
                "reduce", f"applies to video files and image folders, not to a {self.source_kind}"
            )
        return self

    @property
    def source_kind(self) -> SourceKind:
        return source_kind(self.source)
