"""Where the parts are on one frame of the belt: plain image processing on a downscaled ROI, no model.

Belt and parts move together, so frame differencing cannot separate them; each frame is read alone:

1. Thin structures of either polarity (slat gaps, fibres, specks: 1-2 px once scaled down) are removed
   by a small grey-level closing and opening; parts, tens of px across, keep their shape.
2. The belt's colour is a smooth surface fitted to a coarse grid of cell means (a quadratic in x and y
   per channel: the lamp's gradient and vignetting), trimmed iteratively so that the cells covered by
   parts drop out of the fit. The inliers' spread is the belt's own variation (texture, blotches).
3. A pixel is "part" where it differs from that surface by more than ``colour_delta`` and by more than
   ``noise_factor`` times the belt's variation, or where the grey-level gradient exceeds ``edge_delta``.
4. Regions the mask encloses are filled (a washer's ring, a faint part's rim become solid), then an
   opening wider than any leftover line drops what is thin. Blobs whose boxes overlap are one part
   (parts never touch); blobs that are too small, cover more than ``max_area_fraction`` of the ROI or
   span it across the travel axis are not parts.
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING

import cv2
import numpy as np

if TYPE_CHECKING:
    from agent.trigger import Box, PresenceSettings

__all__ = ["find_blobs"]

_CELL = 8  # detect-scale px per cell of the belt model
_NOISE_FLOOR = 6.0  # grey levels: a cell this close to the fitted surface is belt, however clean the belt
_SQUARE3 = np.ones((3, 3), np.uint8)
_THIN = np.ones((5, 5), np.uint8)  # wider than a slat gap or fibre once scaled down
_ROUND5 = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5))


def find_blobs(roi_image: np.ndarray, settings: PresenceSettings) -> tuple[list[Box], float]:
    """Part boxes in ``roi_image`` pixels (blob detection runs downscaled), and the scale used."""
    scale = min(1.0, settings.detect_width / roi_image.shape[1])
    small = cv2.resize(roi_image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    smooth = cv2.morphologyEx(cv2.morphologyEx(small, cv2.MORPH_CLOSE, _THIN), cv2.MORPH_OPEN, _THIN)
    smooth = cv2.GaussianBlur(smooth, (5, 5), 0)
    belt, noise = _belt_model(smooth)
    diff = cv2.absdiff(smooth, belt)
    if diff.ndim == 3:
        diff = np.maximum(np.maximum(diff[..., 0], diff[..., 1]), diff[..., 2])
    grey = smooth if smooth.ndim == 2 else cv2.cvtColor(smooth, cv2.COLOR_BGR2GRAY)
    gradient = cv2.morphologyEx(grey, cv2.MORPH_GRADIENT, _SQUARE3)
    threshold = max(float(settings.colour_delta), settings.noise_factor * noise)
    colour = cv2.threshold(diff, threshold, 255, cv2.THRESH_BINARY)[1]
    mask = cv2.bitwise_or(colour, cv2.threshold(gradient, settings.edge_delta, 255, cv2.THRESH_BINARY)[1])
    mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, _SQUARE3)
    contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    cv2.drawContours(mask, contours, -1, 255, cv2.FILLED)
    mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, _ROUND5)
    count, _, stats, _ = cv2.connectedComponentsWithStats(mask)
    height, width = mask.shape
    along_x = settings.direction in ("left_to_right", "right_to_left")
    boxes = []
    for x0, y0, x1, y1, area in _merge_overlapping(
        [(x, y, x + w, y + h, a) for x, y, w, h, a in stats[1:count]]
    ):
        if not settings.min_area_fraction * mask.size <= area <= settings.max_area_fraction * mask.size:
            continue  # dust, a label, a reflection; or the belt's own texture
        if (y1 - y0 >= height) if along_x else (x1 - x0 >= width):
            continue  # from one side of the belt to the other: a slat or a seam, not a part
        boxes.append(
            (round(x0 / scale), round(y0 / scale), round((x1 - x0) / scale), round((y1 - y0) / scale))
        )
    return boxes, scale


@lru_cache(maxsize=8)
def _terms(rows: int, cols: int) -> np.ndarray:
    """The quadratic's terms (1, x, y, x², xy, y²) at each cell centre, x and y in -1..1."""
    y, x = (a.ravel() for a in np.mgrid[-1 : 1 : rows * 1j, -1 : 1 : cols * 1j])
    return np.stack([np.ones_like(x), x, y, x * x, x * y, y * y], axis=1).astype(np.float32)


def _belt_model(smooth: np.ndarray) -> tuple[np.ndarray, float]:
    """The belt's colour at every pixel of ``smooth`` (same shape, uint8) and its variation around it."""
    height, width = smooth.shape[:2]
    rows, cols = max(3, height // _CELL), max(3, width // _CELL)
    cells = (
        cv2.resize(smooth, (cols, rows), interpolation=cv2.INTER_AREA)
        .astype(np.float32)
        .reshape(rows * cols, -1)
    )
    terms = _terms(rows, cols)
    # Start from the half of the cells nearest the median colour (the belt fills most of the ROI), then
    # refit to the cells near the fit: parts, shadows and glare leave the inliers, lit belt joins them.
    fit = np.broadcast_to(np.median(cells, axis=0), cells.shape)
    residual = np.abs(cells - fit).max(axis=1)
    inliers = residual <= np.median(residual)
    noise = _NOISE_FLOOR
    for _ in range(4):
        if np.count_nonzero(inliers) < 2 * terms.shape[1]:
            break
        coef = np.linalg.lstsq(terms[inliers], cells[inliers], rcond=None)[0]
        fit = terms @ coef
        residual = np.abs(cells - fit).max(axis=1)
        noise = 1.4826 * float(np.median(residual[inliers]))  # robust sigma of the belt around the fit
        inliers = residual <= max(_NOISE_FLOOR, 3 * noise)
    grid = np.clip(fit, 0, 255).reshape(rows, cols, -1)
    belt = cv2.resize(grid, (width, height), interpolation=cv2.INTER_LINEAR)
    return np.round(belt).astype(np.uint8).reshape(smooth.shape), noise


def _merge_overlapping(boxes: list[tuple[int, int, int, int, int]]) -> list[tuple[int, int, int, int, int]]:
    """(x0, y0, x1, y1, area) boxes with every overlapping pair joined: pieces of one part (a dark part
    found by its lit rim and its shadow, say) become one box, as parts never touch."""
    merged = list(boxes)
    pair = _overlapping_pair(merged)
    while pair is not None:
        i, j = pair
        a, b = merged[i], merged[j]
        merged[i] = (min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3]), a[4] + b[4])
        del merged[j]
        pair = _overlapping_pair(merged)
    return merged


def _overlapping_pair(boxes: list[tuple[int, int, int, int, int]]) -> tuple[int, int] | None:
    for i, a in enumerate(boxes):
        for j in range(i + 1, len(boxes)):
            b = boxes[j]
            if a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]:
                return i, j
    return None
