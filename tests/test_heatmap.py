"""Heatmap -> statistics and regions in frame pixels, the overlay, and the event payload (no TensorFlow).

The models that produce real heatmaps are tested in tests/test_heatmap_model.py.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import jsonschema
import numpy as np
import pytest

from agent.bundle import Heatmap, load_bundle
from agent.localize import MAX_REGIONS, summarize_heatmap
from agent.messages import Event, FrameInfo, HeatmapStats, ModelRef, Region, new_event_id
from agent.modelcard import AnomalyNormalization, HeatmapSpec, card_path_for, load_card, save_card
from agent.preprocess import Transform
from agent.render import overlay_heatmap
from agent.status import InspectError
from tests.agent_harness import DEMO_MODEL, ROOT, SCHEMAS

# The demo model of the release before heatmaps were exported (probabilities only): what older
# deployments still run. tests/data/classifier-without-heatmap/README.md says where it came from.
MODEL_WITHOUT_HEATMAP = ROOT / "tests/data/classifier-without-heatmap/parts_int8.tflite"

SHA = "0" * 64


def _heatmap(values: np.ndarray, transform: Transform, size: int = 64, threshold: float = 0.5) -> Heatmap:
    return Heatmap(values.astype(np.float32), (size, size), transform, threshold, "defect_map")


def test_one_hot_cell_becomes_one_region_in_frame_pixels() -> None:
    cells = np.zeros((8, 8), np.float32)
    cells[2, 5] = 0.9  # cell (x=5, y=2) of an 8x8 map over a 64 px input: pixels x 40..47, y 16..23
    # The model saw a 128x128 crop at (100, 50) of the frame, stretched to 64x64: scale 0.5.
    summary = summarize_heatmap(_heatmap(cells, Transform(0.5, 0.5)), (100, 50, 128, 128), (480, 640, 3))
    (region,) = summary.regions
    x, y, w, h = region.box
    # Bilinear between cell centres spreads the cell a little: its centre must be the cell's centre.
    assert abs((x + w / 2) - (100 + 2 * 44)) <= 2 and abs((y + h / 2) - (50 + 2 * 20)) <= 2
    assert 0 < region.area <= w * h and region.score == pytest.approx(summary.peak)
    assert 0.6 < summary.peak <= 0.9  # interpolated peak between cell centres
    assert 0 < summary.area_fraction < 0.05 and summary.mean < 0.05
    assert summary.threshold == 0.5 and summary.kind == "defect_map"


def test_equal_to_the_threshold_is_not_a_region_and_nothing_above_gives_none() -> None:
    flat = np.full((8, 8), 0.5, np.float32)
    summary = summarize_heatmap(_heatmap(flat, Transform(1.0, 1.0)), (0, 0, 64, 64), (64, 64, 3))
    assert summary.regions == [] and summary.area_fraction == 0.0 and summary.peak == pytest.approx(0.5)


def test_regions_are_strongest_first_capped_and_clipped_to_the_frame() -> None:
    cells = np.zeros((16, 16), np.float32)
    for i in range(8):  # eight separate blobs of rising strength
        cells[1 + (i // 4) * 8, 1 + (i % 4) * 4] = 0.55 + 0.05 * i
    # A crop reaching past the frame's left/top edge (part near the edge): boxes stay inside the frame.
    summary = summarize_heatmap(_heatmap(cells, Transform(1.0, 1.0)), (-10, -10, 64, 64), (40, 40, 3))
    assert 0 < len(summary.regions) <= MAX_REGIONS
    scores = [r.score for r in summary.regions]
    assert scores == sorted(scores, reverse=True)
    for region in summary.regions:
        x, y, w, h = region.box
        assert x >= 0 and y >= 0 and x + w <= 40 and y + h <= 40 and w > 0 and h > 0


def test_letterboxed_input_maps_back_through_the_padding() -> None:
    # A 200x100 crop letterboxed into 64x64: scale 0.32, 16 px padding above and below.
    transform = Transform(0.32, 0.32, 0.0, 16.0)
    cells = np.zeros((8, 8), np.float32)
    cells[3:5, 0] = 1.0  # left edge, vertical middle of the input
    summary = summarize_heatmap(_heatmap(cells, transform), (0, 0, 200, 100), (100, 200, 3))
    x, y, _, h = summary.regions[0].box
    assert x == 0 and 20 <= y + h / 2 <= 80  # the padding is gone: middle rows of the crop


def test_anomaly_maps_are_normalised_so_the_pixel_threshold_is_one_half() -> None:
    norm = AnomalyNormalization(image_threshold=2.0, pixel_threshold=1.0, min=0.0, max=4.0)
    values = np.array([[0.0, 1.0], [3.0, 9.0]], np.float32)
    heat = Heatmap(values, (2, 2), Transform(1, 1), 1.0, "anomaly_map", norm)
    unit, threshold = heat.unit_values()
    assert threshold == 0.5
    np.testing.assert_allclose(unit, [[0.25, 0.5], [1.0, 1.0]])  # (v - 1) / 4 + 0.5, clamped


def test_overlay_tints_only_the_crop_and_hot_pixels() -> None:
    frame = np.full((100, 120, 3), 128, np.uint8)
    unit = np.zeros((32, 32), np.float32)
    unit[8:16, 8:16] = 1.0
    out = overlay_heatmap(frame, unit, Transform(0.5, 0.5), (20, 10, 64, 64), threshold=0.5)
    assert out.shape == frame.shape and frame.max() == 128  # a copy; the frame is untouched
    changed = np.any(out != frame, axis=2)
    ys, xs = np.nonzero(changed)
    assert changed.any() and xs.min() >= 20 and xs.max() < 84 and ys.min() >= 10 and ys.max() < 74
    assert not changed[60:, :].any()  # the cold part of the crop keeps its look


def test_event_with_regions_and_heatmap_validates_and_old_events_still_do() -> None:
    schema = json.loads((SCHEMAS / "event.schema.json").read_text())
    event = Event(
        event_id=new_event_id("dev1", "cam1", 3, 0.0), ts="2026-01-31T08:15:02.123Z", seq=3, device="dev1",
        camera="cam1", verdict="NG", label="scratch", score=0.8, defect_score=0.8, threshold=0.5,
        regions=[Region(box=[10, 20, 30, 5], score=0.9, area=120)],
        heatmap=HeatmapStats(kind="defect_map", peak=0.9, mean=0.05, area_fraction=0.01, threshold=0.6),
        model=ModelRef(name="m", version="1", sha256=SHA), frame=FrameInfo(width=64, height=48, index=9),
    )  # fmt: skip
    data = json.loads(event.model_dump_json())
    jsonschema.validate(data, schema)
    old = {k: v for k, v in data.items() if k not in ("heatmap", "regions")}  # a consumer's stored event
    jsonschema.validate(old, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**data, "heatmap": {**data["heatmap"], "peak": 1.5}}, schema)


def test_a_model_without_a_heatmap_output_still_works(tmp_path: Path) -> None:
    bundle = load_bundle(MODEL_WITHOUT_HEATMAP, num_threads=1)
    assert bundle.card.heatmap is None and bundle.heatmap_index is None
    scores, _ = bundle.classify(np.full((120, 160, 3), 90, np.uint8))
    assert scores.heatmap is None and 0.0 <= scores.defect_score <= 1.0
    # ... and the bundled demo model has one, read by name whatever the converter's output order.
    demo = load_bundle(DEMO_MODEL, num_threads=1)
    assert demo.card.heatmap is not None and demo.heatmap_index is not None
    scores, _ = demo.classify(np.full((120, 160, 3), 90, np.uint8))
    assert scores.heatmap is not None and scores.heatmap.values.ndim == 2
    assert set(scores.probabilities) == set(demo.card.labels)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"heatmap": {"output": "nope", "kind": "defect_map", "threshold": 0.5}}, "heatmap.output"),
        ({"task": "anomaly"}, "needs the 'anomaly' section"),  # a card without thresholds
        ({"anomaly": {"image_threshold": 1, "pixel_threshold": 1, "min": 2, "max": 2}}, "max"),
    ],
)
def test_cards_that_cannot_be_read_are_refused_with_the_reason(
    tmp_path: Path, change: dict[str, object], message: str
) -> None:
    model = tmp_path / "m.tflite"
    shutil.copy(DEMO_MODEL, model)
    raw = json.loads(card_path_for(DEMO_MODEL).read_text())
    card_path_for(model).write_text(json.dumps({**raw, **change}))
    with pytest.raises(InspectError, match=message):
        load_bundle(model, num_threads=1)


def test_a_heatmap_spec_naming_a_missing_output_is_refused_at_load(tmp_path: Path) -> None:
    """A card edited by hand to add a heatmap the model does not have."""
    model = tmp_path / "m.tflite"
    shutil.copy(MODEL_WITHOUT_HEATMAP, model)
    card = load_card(card_path_for(MODEL_WITHOUT_HEATMAP))
    card.outputs[0].signature_name = "output_0"
    card.heatmap = HeatmapSpec(output="output_0", kind="defect_map", threshold=0.5)
    save_card(card, card_path_for(model))
    with pytest.raises(InspectError, match="no \\[1, h, w, 1\\] output"):
        load_bundle(model, num_threads=1)
