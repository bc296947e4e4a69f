"""Config sections -> stage settings: the rules that are easy to get subtly wrong."""

from __future__ import annotations

import pytest

from agent.config import parse_config
from agent.modelcard import load_card
from agent.wiring import camera_rules, roi_box, source_spec
from tests.agent_harness import DEMO_MODEL


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("continuous", 3),  # frames in a row: the setting applies
        ("interval", 3),
        ("presence", 1),  # one verdict per part: separate parts must not be chained
        ("command", 1),  # one verdict per request
    ],
)
def test_min_consecutive_applies_to_frame_streams_only(mode: str, expected: int) -> None:
    config = parse_config(
        "model: {path: m.tflite}\n"
        f"cameras: {{c: {{source: v.avi, trigger: {{mode: {mode}}}}}}}\n"
        "decision: {min_consecutive: 3}\n"
    )
    card = load_card(DEMO_MODEL.with_suffix(".json"))
    assert camera_rules(card, config, "c").min_consecutive == expected


@pytest.mark.parametrize(
    ("reduce", "expected"),
    [(1, (101, 51, 640, 310)), (2, (50, 25, 320, 155)), (4, (25, 12, 160, 78))],
)
def test_roi_follows_a_reduced_decode(reduce: int, expected: tuple[int, int, int, int]) -> None:
    """The ROI is configured in full-size pixels; the trigger gets it in the delivered frames' pixels."""
    config = parse_config(
        "model: {path: m.tflite}\n"
        f"cameras: {{c: {{source: v.avi, reduce: {reduce}, "
        "roi: {x: 101, y: 51, width: 640, height: 310}}}\n"
    )
    camera = config.cameras["c"]
    assert roi_box(camera) == expected
    assert source_spec("c", camera).reduce == reduce
