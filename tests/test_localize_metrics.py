"""Localization metrics against known answers: perfect, inverted and uninformative heatmaps."""

from __future__ import annotations

import numpy as np
import pytest

from tools.localization import (
    localization_metrics,
    peak_in_mask,
    pixel_threshold_for_f1,
    pro_score,
    upsample,
)


def _set(count: int = 6, size: int = 32) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Masks with one square defect each in the first half, empty masks (good parts) after."""
    masks = np.zeros((count, size, size), np.uint8)
    for i in range(count // 2):
        masks[i, 4 + 3 * i : 10 + 3 * i, 6:14] = 255
    return masks, np.ones(count, bool), (masks > 0).astype(np.float32)


def test_a_perfect_map_scores_one_everywhere() -> None:
    masks, known, perfect = _set()
    m = localization_metrics(perfect, masks, known, threshold=0.5)
    assert m["pixel_roc_auc"] == 1.0 and m["pro"] == pytest.approx(1.0, abs=0.02)
    assert m["peak_in_mask"] == 1.0 and m["iou_at_threshold"] == 1.0
    assert m["images"] == 6 and m["defect_images"] == 3


def test_an_inverted_map_scores_zero_and_noise_scores_chance() -> None:
    masks, known, perfect = _set()
    inverted = localization_metrics(1.0 - perfect, masks, known, threshold=0.5)
    assert inverted["pixel_roc_auc"] == 0.0 and inverted["pro"] == pytest.approx(0.0, abs=1e-6)
    noise = np.random.default_rng(0).random(perfect.shape).astype(np.float32)
    chance = localization_metrics(noise, masks, known, threshold=0.5)
    assert 0.4 < chance["pixel_roc_auc"] < 0.6
    assert 0.05 < chance["pro"] < 0.25  # random maps: PRO ~ FPR, integrated to 0.3 then /0.3 -> ~0.15


def test_defects_without_a_mask_are_left_out() -> None:
    masks, known, perfect = _set()
    known[0] = False
    m = localization_metrics(perfect, masks, known, threshold=None)
    assert m["images"] == 5 and m["defect_images"] == 2 and m["iou_at_threshold"] is None


def test_good_only_data_gives_no_pixel_figures() -> None:
    masks = np.zeros((3, 8, 8), np.uint8)
    m = localization_metrics(np.zeros((3, 8, 8), np.float32), masks, np.ones(3, bool), 0.5)
    assert m["pixel_roc_auc"] is None and m["pro"] is None and m["defect_images"] == 0
    assert pro_score(np.zeros((3, 8, 8)), masks) is None
    with pytest.raises(ValueError, match="no defect pixels"):
        pixel_threshold_for_f1(np.zeros((3, 8, 8)), masks)


def test_peak_in_mask_with_tolerance() -> None:
    mask = np.zeros((1, 20, 20), np.uint8)
    mask[0, 5:8, 5:8] = 255
    heat = np.zeros((1, 20, 20), np.float32)
    heat[0, 10, 10] = 1.0  # 3 px from the mask's corner
    assert not peak_in_mask(heat, mask)[0]
    assert peak_in_mask(heat, mask, tolerance=3)[0]


def test_f1_threshold_separates_a_clean_map_strictly() -> None:
    masks, _, perfect = _set()
    graded = perfect * 0.8 + 0.1  # defect 0.9, good 0.1
    threshold, f1 = pixel_threshold_for_f1(graded, masks)
    assert f1 == 1.0 and 0.1 <= threshold < 0.9 and np.all((graded > threshold) == (masks > 0))


def test_upsample_keeps_cells_in_place() -> None:
    cells = np.zeros((1, 4, 4), np.float32)
    cells[0, 1, 2] = 1.0
    full = upsample(cells, 32, 32)
    assert full.shape == (1, 32, 32)
    y, x = np.unravel_index(int(full[0].argmax()), (32, 32))
    assert 8 <= y < 16 and 16 <= x < 24
