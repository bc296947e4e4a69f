"""Where-is-the-defect metrics and pixel thresholds, from heatmaps and ground-truth masks.

Shared by ``train`` (pixel threshold on validation data), ``train --task anomaly``
(calibration) and ``evaluate`` (the report). Heatmaps come in at the model's output
resolution and are upsampled to the masks' (the model input's) before any comparison.

Definitions follow the MVTec AD benchmark: pixel ROC-AUC over every pixel of every
image; PRO (per-region overlap) averages, over every connected ground-truth region,
the fraction of it above a threshold, and is integrated over the false-positive rate
on good pixels up to 0.3, then divided by 0.3 so a perfect map scores 1.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

__all__ = [
    "PRO_MAX_FPR",
    "localization_metrics",
    "peak_in_mask",
    "pixel_threshold_for_f1",
    "pro_score",
    "upsample",
]

PRO_MAX_FPR = 0.3
_PRO_STEPS = 100
_MAX_PIXELS = 4_000_000  # pixel ROC-AUC on a seeded sample above this (memory and time on 2 cores)


def upsample(maps: np.ndarray, height: int, width: int) -> np.ndarray:
    """(N, h, w) heatmaps -> (N, height, width), bilinear between cell centres."""
    if maps.shape[1:] == (height, width):
        return maps.astype(np.float32, copy=False)
    return np.stack(
        [cv2.resize(m.astype(np.float32), (width, height), interpolation=cv2.INTER_LINEAR) for m in maps]
    )


def _binary(masks: np.ndarray) -> np.ndarray:
    return masks > 127 if masks.dtype == np.uint8 else masks > 0.5


def peak_in_mask(maps: np.ndarray, masks: np.ndarray, tolerance: int = 0) -> np.ndarray:
    """Per image with a non-empty mask: is the heatmap's peak inside it (dilated by ``tolerance`` px)?"""
    truth = _binary(masks)
    hits = []
    for heat, mask in zip(maps, truth, strict=True):
        if not mask.any():
            continue
        if tolerance > 0:
            kernel = np.ones((2 * tolerance + 1, 2 * tolerance + 1), np.uint8)
            mask = cv2.dilate(mask.astype(np.uint8), kernel) > 0
        y, x = np.unravel_index(int(np.argmax(heat)), heat.shape)
        hits.append(bool(mask[y, x]))
    return np.asarray(hits, dtype=bool)


def pixel_threshold_for_f1(maps: np.ndarray, masks: np.ndarray) -> tuple[float, float]:
    """The pixel threshold with the best pixel F1 against the masks, and that F1."""
    from sklearn.metrics import precision_recall_curve

    truth = _binary(masks).reshape(-1)
    if not truth.any():
        raise ValueError("no defect pixels in the masks: cannot pick a pixel threshold by F1")
    values = maps.reshape(-1)
    precision, recall, thresholds = precision_recall_curve(truth, values)
    f1 = 2 * precision * recall / np.maximum(precision + recall, 1e-12)
    best = int(np.argmax(f1[:-1])) if len(thresholds) else 0
    # precision_recall_curve flags score >= t; ours is score > t, so sit just below the chosen value.
    threshold = float(np.nextafter(np.float32(thresholds[best]), np.float32(-np.inf)))
    return threshold, float(f1[best])


def pro_score(maps: np.ndarray, masks: np.ndarray, max_fpr: float = PRO_MAX_FPR) -> float | None:
    """Normalised area under the PRO curve up to ``max_fpr`` (MVTec AD).

    None when there is no ground-truth region or no good pixel to measure false positives on.
    """
    truth = _binary(masks)
    regions: list[tuple[int, np.ndarray]] = []
    for i, mask in enumerate(truth):
        count, labels = cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)
        regions += [(i, labels == k) for k in range(1, count)]
    good_pixels = maps[~truth]
    if not regions or good_pixels.size == 0:
        return None
    # Thresholds from the good pixels' quantiles, so the FPR axis up to max_fpr is sampled evenly.
    fprs = np.linspace(0.0, max_fpr, _PRO_STEPS + 1)
    thresholds = np.quantile(good_pixels, 1.0 - fprs)
    region_values = [maps[i][region] for i, region in regions]
    pros = np.array([np.mean([np.mean(v > t) for v in region_values]) for t in thresholds])
    actual_fpr = np.array([np.mean(good_pixels > t) for t in thresholds])
    order = np.argsort(actual_fpr)
    x, y = np.append(actual_fpr[order], max_fpr), np.append(pros[order], pros[order][-1])
    keep = x <= max_fpr
    return float(np.trapezoid(y[keep], x[keep]) / max_fpr)


def localization_metrics(
    maps: np.ndarray, masks: np.ndarray, mask_known: np.ndarray, threshold: float | None, seed: int = 0
) -> dict[str, Any]:
    """Pixel ROC-AUC, PRO, peak-in-mask rate and IoU at ``threshold``, on images whose mask is known.

    Good images count with empty masks (their pixels are the false positives); defect
    images without a mask file are left out, since their pixels have no truth.
    """
    from sklearn.metrics import roc_auc_score

    known = mask_known.astype(bool)
    maps, truth = maps[known], _binary(masks[known])
    result: dict[str, Any] = {
        "images": int(known.sum()),
        "defect_images": int(truth.reshape(len(truth), -1).any(1).sum()),
    }
    if result["defect_images"] == 0:
        return {**result, "pixel_roc_auc": None, "pro": None, "peak_in_mask": None, "iou_at_threshold": None}
    flat_maps, flat_truth = maps.reshape(-1), truth.reshape(-1)
    if flat_maps.size > _MAX_PIXELS:
        pick = np.random.default_rng(seed).choice(flat_maps.size, _MAX_PIXELS, replace=False)
        flat_maps, flat_truth = flat_maps[pick], flat_truth[pick]
    both = flat_truth.any() and (~flat_truth).any()
    hits = peak_in_mask(maps, truth)
    iou = None
    if threshold is not None:
        flagged = maps > threshold
        with_defect = truth.reshape(len(truth), -1).any(1)
        inter = (flagged & truth).reshape(len(truth), -1).sum(1)[with_defect]
        union = (flagged | truth).reshape(len(truth), -1).sum(1)[with_defect]
        iou = float(np.mean(inter / np.maximum(union, 1)))
    return {
        **result,
        "pixel_roc_auc": float(roc_auc_score(flat_truth, flat_maps)) if both else None,
        "pro": pro_score(maps, truth),
        "pro_max_fpr": PRO_MAX_FPR,
        "peak_in_mask": float(hits.mean()) if hits.size else None,
        "pixel_threshold": threshold,
        "iou_at_threshold": iou,
    }
