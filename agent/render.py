"""Verdict + frame -> the JPEG a person looks at: ROI, part box, label and score, size-capped."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from agent.preprocess import Transform
from agent.trigger import Box

__all__ = ["Jpeg", "annotate", "crop_padded", "encode_jpeg", "overlay_heatmap"]

_NG, _OK, _ROI = (40, 40, 230), (60, 180, 60), (200, 160, 40)  # BGR


@dataclass(frozen=True)
class Jpeg:
    data: bytes
    width: int
    height: int


def crop_padded(image: np.ndarray, box: Box) -> np.ndarray:
    """``image[box]``, with replicated border where the box reaches past the frame (parts near an edge)."""
    x, y, w, h = box
    height, width = image.shape[:2]
    if x >= 0 and y >= 0 and x + w <= width and y + h <= height:
        return image[y : y + h, x : x + w]
    # Index with clamped coordinates: the replicated border, also for a box wholly outside the frame
    # (slicing with a negative end would wrap around and return the wrong shape).
    rows = np.clip(np.arange(y, y + h), 0, height - 1)
    cols = np.clip(np.arange(x, x + w), 0, width - 1)
    return image[rows[:, None], cols]


def encode_jpeg(image: np.ndarray, max_side: int, quality: int) -> Jpeg:
    """Downscale so the longer side is at most ``max_side``, then JPEG-encode."""
    height, width = image.shape[:2]
    scale = min(1.0, max_side / max(height, width))
    if scale < 1.0:
        image = cv2.resize(image, (round(width * scale), round(height * scale)), interpolation=cv2.INTER_AREA)
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError(f"JPEG encoding failed for an image of shape {image.shape}")
    return Jpeg(data.tobytes(), image.shape[1], image.shape[0])


def annotate(
    image: np.ndarray,
    ng: bool,
    text: str,
    roi: Box | None,
    box: Box | None,
    regions: list[Box] | None = None,
    region_texts: list[str] | None = None,
) -> np.ndarray:
    """A copy of ``image`` with the ROI, the inspected box and regions drawn, and ``text`` in a banner.

    ``region_texts`` (a detector's "label score") are written above their regions, in the same order.
    """
    out = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR) if image.ndim == 2 else image.copy()
    thick = max(2, round(max(out.shape[:2]) / 400))
    colour = _NG if ng else _OK
    if roi is not None:
        x, y, w, h = roi
        cv2.rectangle(out, (x, y), (x + w - 1, y + h - 1), _ROI, thick)
    if box is not None:
        x, y, w, h = box
        cv2.rectangle(out, (x, y), (x + w - 1, y + h - 1), colour, thick)
    for i, (x, y, w, h) in enumerate(regions or []):
        cv2.rectangle(out, (x, y), (x + w - 1, y + h - 1), _NG, max(1, thick // 2))
        if region_texts and i < len(region_texts):
            small = max(0.35, out.shape[0] / 1440)
            cv2.putText(out, region_texts[i], (x, max(10, y - 3)), cv2.FONT_HERSHEY_SIMPLEX, small, _NG,
                        max(1, thick // 2), cv2.LINE_AA)  # fmt: skip
    scale = max(0.5, out.shape[0] / 720)
    (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thick)
    cv2.rectangle(out, (0, 0), (tw + 16, th + base + 16), colour, -1)
    cv2.putText(out, text, (8, th + 8), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), thick, cv2.LINE_AA)
    return out


def overlay_heatmap(
    image: np.ndarray, unit: np.ndarray, transform: Transform, crop: Box, threshold: float
) -> np.ndarray:
    """A copy of the frame with a 0..1 heatmap (model-input pixels) blended over the inspected crop.

    ``transform`` is the preprocess one (model input -> crop pixels, stretch or letterbox). Only
    pixels above half the pixel ``threshold`` are tinted (JET colours), so good areas keep their look.
    """
    out = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR) if image.ndim == 2 else image.copy()
    x, y, w, h = crop
    left, top = max(0, x), max(0, y)
    right, bottom = min(out.shape[1], x + w), min(out.shape[0], y + h)
    if right <= left or bottom <= top:
        return out
    sx, sy = transform.scale_x, transform.scale_y
    to_crop = np.array(
        [[1 / sx, 0, -transform.offset_x / sx], [0, 1 / sy, -transform.offset_y / sy]], np.float32
    )
    on_crop = cv2.warpAffine(unit.astype(np.float32), to_crop, (w, h), flags=cv2.INTER_LINEAR)
    part = on_crop[top - y : bottom - y, left - x : right - x]
    levels = (np.clip(part, 0.0, 1.0) * 255).astype(np.uint8)
    colours = cv2.applyColorMap(levels, cv2.COLORMAP_JET)
    alpha = np.where(part > threshold / 2, 0.45, 0.0)[..., None]
    blended = out[top:bottom, left:right].astype(np.float32) * (1 - alpha) + colours * alpha
    out[top:bottom, left:right] = np.clip(blended, 0, 255).astype(np.uint8)
    return out
