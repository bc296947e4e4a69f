"""A model's heatmap -> where the defect is: statistics and the top regions, in frame pixels.

Runs on the event thread (only NG parts need it), never on the inspection hot path: the
inspection thread only keeps the small heatmap the model already produced.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from agent.bundle import Heatmap
from agent.trigger import Box

__all__ = ["HeatmapSummary", "RegionBox", "summarize_heatmap"]

MAX_REGIONS = 5


@dataclass(frozen=True)
class RegionBox:
    box: Box  # x, y, w, h in frame pixels
    score: float  # the heatmap's peak inside the region, 0..1
    area: int  # pixels above the threshold, in frame pixels


@dataclass(frozen=True)
class HeatmapSummary:
    kind: str
    peak: float  # 0..1
    mean: float  # 0..1
    area_fraction: float  # of the inspected crop above the threshold
    threshold: float  # 0..1, the pixel threshold on the same scale
    regions: list[RegionBox]
    unit: np.ndarray  # (input h, input w) 0..1 values at model-input resolution, for the overlay


def _upsampled(heatmap: Heatmap) -> tuple[np.ndarray, float]:
    unit, threshold = heatmap.unit_values()
    width, height = heatmap.input_size
    # Each heatmap cell covers a (stride x stride) patch: bilinear between cell centres.
    return cv2.resize(unit.astype(np.float32), (width, height), interpolation=cv2.INTER_LINEAR), threshold


def summarize_heatmap(heatmap: Heatmap, crop: Box, frame_shape: tuple[int, ...]) -> HeatmapSummary:
    """Statistics and up to ``MAX_REGIONS`` boxes (strongest first) of the cells above the threshold.

    ``crop`` is where the model's image was taken from in the frame; regions are clipped to the frame.
    """
    unit, threshold = _upsampled(heatmap)
    above = unit > threshold  # equal is not a defect, as for the image score
    count, labels, stats, _ = cv2.connectedComponentsWithStats(above.astype(np.uint8), connectivity=8)
    transform, (cx, cy) = heatmap.transform, crop[:2]
    area_scale = 1.0 / (transform.scale_x * transform.scale_y)
    regions = []
    for index in range(1, count):
        x, y, w, h, pixels = (int(v) for v in stats[index])
        x0, y0 = transform.to_source(x, y)
        x1, y1 = transform.to_source(x + w, y + h)
        left, top = max(0, int(np.floor(x0)) + cx), max(0, int(np.floor(y0)) + cy)
        right = min(frame_shape[1], int(np.ceil(x1)) + cx)
        bottom = min(frame_shape[0], int(np.ceil(y1)) + cy)
        if right <= left or bottom <= top:
            continue
        peak = float(unit[labels == index].max())
        regions.append(RegionBox((left, top, right - left, bottom - top), peak, round(pixels * area_scale)))
    regions.sort(key=lambda r: (-r.score, -r.area))
    return HeatmapSummary(
        kind=heatmap.kind,
        peak=float(unit.max()),
        mean=float(unit.mean()),
        area_fraction=float(above.mean()),
        threshold=float(threshold),
        regions=regions[:MAX_REGIONS],
        unit=unit,
    )
