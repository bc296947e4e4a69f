"""Triggers: blobs, one inspection per passing part (synthetic and a real line video), timers, commands."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from agent.demo_report import LineTruth, belt_roi, summarise
from agent.trigger import (
    Box,
    CommandTrigger,
    ContinuousTrigger,
    Direction,
    Inspection,
    IntervalTrigger,
    PresenceSettings,
    PresenceTrigger,
    find_blobs,
)
from agent.types import Frame

W, H = 640, 360
BELT = (40, 40, 40)  # a dark belt, BGR


def _frame(image: np.ndarray, index: int = 0, mono_time: float | None = None) -> Frame:
    mono = float(index) / 30 if mono_time is None else mono_time
    return Frame("cam", image, index, 1000.0 + mono, mono, source_pos=index)


def _belt(width: int = W, height: int = H) -> np.ndarray:
    return np.full((height, width, 3), BELT, np.uint8)


def _disc(image: np.ndarray, centre: tuple[int, int], radius: int, colour: tuple[int, int, int]) -> Box:
    cv2.circle(image, centre, radius, colour, -1)
    return (centre[0] - radius, centre[1] - radius, 2 * radius + 1, 2 * radius + 1)


def _near(got: Box, want: Box, px: int = 3) -> bool:
    """Same centre within ``px`` and the same size, from one detection pixel (2 px at 640 px wide) small to
    ``2 * px + 2`` large: find_blobs' edge mask and blur may put the box a few px outside a sharp edge."""
    centre_ok = all(abs((g0 + g1 / 2) - (w0 + w1 / 2)) <= px for g0, g1, w0, w1 in
                    ((got[0], got[2], want[0], want[2]), (got[1], got[3], want[1], want[3])))  # fmt: skip
    return centre_ok and all(-2 <= g - w <= 2 * px + 2 for g, w in zip(got[2:], want[2:], strict=True))


# ---- find_blobs ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("colour", "rim"),
    [
        ((230, 230, 230), None),  # bright metal disc
        ((40, 40, 200), None),  # red part: differs from the belt in colour more than in grey level
        ((40, 160, 40), None),  # green
        # dark grey part (58, under colour_delta from the belt) with a lighter bevel: found by its edge
        ((58, 58, 58), (110, 110, 110)),
    ],
)
def test_find_blobs_finds_each_part(colour: tuple[int, int, int], rim: tuple[int, int, int] | None) -> None:
    image = _belt()
    want = []
    for cx, cy, r in ((110, 120, 40), (330, 200, 55), (530, 150, 30)):
        want.append(_disc(image, (cx, cy), r, rim or colour))
        if rim is not None:
            cv2.circle(image, (cx, cy), r - 4, colour, -1)
    boxes, scale = find_blobs(image, PresenceSettings())
    assert scale == 0.5  # 640 px ROI -> detect_width 320
    assert len(boxes) == 3
    for box in want:
        assert any(_near(got, box) for got in boxes), (box, boxes)


def test_find_blobs_ignores_small_specks() -> None:
    image = _belt()
    _disc(image, (100, 100), 5, (255, 255, 255))  # dust: far under 0.5 % of the ROI
    _disc(image, (300, 250), 6, (0, 0, 200))
    big = _disc(image, (500, 150), 40, (220, 220, 220))
    boxes, _ = find_blobs(image, PresenceSettings())
    assert len(boxes) == 1 and _near(boxes[0], big)


def test_find_blobs_on_grey_and_empty_belt() -> None:
    grey = np.full((H, W), 40, np.uint8)
    assert find_blobs(grey, PresenceSettings())[0] == []
    cv2.circle(grey, (320, 180), 50, 200, -1)
    boxes, _ = find_blobs(grey, PresenceSettings())
    assert len(boxes) == 1 and _near(boxes[0], (270, 130, 101, 101))


# ---- PresenceTrigger on generated motion ----------------------------------------------------------


def _line(
    starts: list[float],
    step: float,
    frames: int,
    direction: Direction = "left_to_right",
    radius: int = 30,
    stop_at: float | None = None,
) -> Iterator[tuple[int, np.ndarray, list[tuple[float, float]]]]:
    """Frames of discs moving ``step`` px per frame from ``starts`` (positions along the travel axis)."""
    colours = [(230, 230, 230), (40, 40, 210), (40, 200, 40), (200, 120, 40)]
    for n in range(frames):
        image = _belt()
        centres = []
        for k, start in enumerate(starts):
            along = start + step * n
            if stop_at is not None:
                along = min(along, stop_at)
            cx, cy = {
                "left_to_right": (along, H / 2),
                "right_to_left": (W - along, H / 2),
                "top_to_bottom": (W / 2 + 150 * (k % 2), along),
                "bottom_to_top": (W / 2, H - along),
            }[direction]
            cv2.circle(image, (round(cx), round(cy)), radius, colours[k % len(colours)], -1)
            centres.append((cx, cy))
        yield n, image, centres


def _run(
    trigger: PresenceTrigger, frames: Iterator[tuple[int, np.ndarray, list[tuple[float, float]]]]
) -> list[tuple[Inspection, list[tuple[float, float]]]]:
    out = []
    for n, image, centres in frames:
        out += [(insp, centres) for insp in trigger.update(_frame(image, n))]
    return out


def _centre(box: Box) -> tuple[float, float]:
    return box[0] + box[2] / 2, box[1] + box[3] / 2


@pytest.mark.parametrize(
    ("direction", "starts", "step", "frames"),
    [
        ("left_to_right", [-40.0], 8.0, 90),  # one part across the whole frame
        ("left_to_right", [-40.0, -240.0, -440.0], 8.0, 140),  # three parts, two or three in view at once
        ("right_to_left", [-40.0, -240.0], 7.0, 130),  # the other way, a speed that does not divide 320
        ("top_to_bottom", [-40.0, -200.0], 6.0, 110),  # vertical travel: centre line is y = 180
    ],
)
def test_one_inspection_per_part_at_the_centre_line(
    direction: Direction, starts: list[float], step: float, frames: int
) -> None:
    trigger = PresenceTrigger(PresenceSettings(direction=direction))
    got = _run(trigger, _line(starts, step, frames, direction))
    assert len(got) == len(starts)
    assert trigger.parts_seen == len(starts)
    assert len({insp.part_id for insp, _ in got}) == len(starts)
    vertical = direction == "top_to_bottom"
    line = H / 2 if vertical else W / 2
    for insp, _ in got:
        assert insp.part_box is not None
        cx, cy = _centre(insp.part_box)
        along = cy if vertical else (cx if direction == "left_to_right" else W - cx)
        # reached the centre line on this frame: not before it, and at most one step past (+2 px of blur)
        assert line - 2 <= along <= line + step + 2, (along, line)
        side = round(max(insp.part_box[2], insp.part_box[3]) * 1.5)
        assert insp.crop[2:] == (side, side)
        assert _centre(insp.crop) == pytest.approx((cx, cy), abs=1)
        assert _near(insp.part_box, (round(cx) - 30, round(cy) - 30, 61, 61))


def test_part_ids_stay_with_their_part() -> None:
    trigger = PresenceTrigger(PresenceSettings())
    seen: dict[int, list[float]] = {}
    for n, image, _ in _line([-40.0, -240.0], 8.0, 110):
        trigger.update(_frame(image, n))
        for track in trigger._tracks:
            if track.last_index == n:  # matched on this frame
                seen.setdefault(track.id, []).append(track.centre[0])
    assert sorted(seen) == [0, 1]  # two tracks for two parts, never a new one for the same part
    for xs in seen.values():
        assert all(b > a for a, b in itertools.pairwise(xs))  # each track only moves on


@pytest.mark.parametrize(
    "stop_at",
    [
        250.0,  # well before the centre line (inside the old 15 % tolerance band)
        316.0,  # a few px before it
    ],
)
def test_part_that_stops_before_the_centre_is_not_inspected(stop_at: float) -> None:
    trigger = PresenceTrigger(PresenceSettings())
    assert _run(trigger, _line([-40.0], 8.0, 80, stop_at=stop_at)) == []


def test_part_first_seen_just_past_the_centre_is_inspected_once() -> None:
    # A part that appears whole just past the line (lost and found again, or put on the belt there)
    # is still inspected, once; one first seen beyond the tolerance band is not.
    for start, expected in ((330.0, 1), (420.0, 0)):
        trigger = PresenceTrigger(PresenceSettings())
        assert len(_run(trigger, _line([start], 4.0, 10))) == expected, start


def test_part_cut_by_the_roi_side_is_inspected_once() -> None:
    # Only the ROI's edges across the travel axis (where parts enter and leave) make a part "not whole
    # yet"; a part riding at the belt's side, cut by the ROI's top edge here, is inspected once at the line.
    roi = (0, 150, W, 120)
    trigger = PresenceTrigger(PresenceSettings(), roi=roi)
    frames = ((n, np.roll(image, -25, axis=0), c) for n, image, c in _line([-40.0], 8.0, 90))  # centre y 155
    got = _run(trigger, frames)
    assert len(got) == 1
    assert got[0][0].part_box is not None
    assert W / 2 - 2 <= _centre(got[0][0].part_box)[0] <= W / 2 + 10


def test_roi_part_is_inspected_only_whole_inside_roi() -> None:
    roi = (160, 60, 320, 240)  # centre line still x = 320; parts enter through the ROI's left edge
    trigger = PresenceTrigger(PresenceSettings(), roi=roi)
    got = _run(trigger, _line([-40.0, -240.0], 8.0, 120))
    assert len(got) == 2
    for insp, _ in got:
        assert insp.part_box is not None
        x, y, w, h = insp.part_box
        assert roi[0] < x and x + w < roi[0] + roi[2] and roi[1] < y and y + h < roi[1] + roi[3]


@pytest.mark.parametrize(
    "every",
    [
        2,  # every other frame reaches the trigger
        3,  # two of three dropped: 24 px between the frames it sees
    ],
)
def test_dropped_frames_still_give_one_inspection_per_part(every: int) -> None:
    trigger = PresenceTrigger(PresenceSettings())
    frames = (f for f in _line([-40.0, -240.0, -440.0], 8.0, 140) if f[0] % every == 0)
    got = _run(trigger, frames)
    assert len(got) == 3 and len({insp.part_id for insp, _ in got}) == 3
    for insp, _ in got:
        assert insp.part_box is not None
        assert W / 2 - 2 <= _centre(insp.part_box)[0] <= W / 2 + 8 * every + 2


# ---- PresenceTrigger on a real generated line video --------------------------------------------


def _presence_on_line_video(out: Path, seed: int, seconds: float = 8) -> Any:
    """Generate a 640x360 line video, run the presence trigger over its belt, score it against the truth."""
    from tools.synth_video import LineSpec, generate_video

    meta = generate_video(out, LineSpec(width=640, height=360, duration=seconds, seed=seed), progress=False)
    roi = belt_roi(meta)
    trigger = PresenceTrigger(PresenceSettings(), roi=roi)
    capture = cv2.VideoCapture(str(out / meta["path"]))
    results: list[dict[str, Any]] = []
    try:
        for idx in range(meta["frame_count"]):
            ok, image = capture.read()
            assert ok, f"frame {idx} of {meta['frame_count']} unreadable"
            for insp in trigger.update(_frame(image, idx)):
                assert insp.part_box is not None
                results.append({
                    "seq": len(results), "verdict": "OK", "latency_ms": 1.0,
                    "part_box": list(insp.part_box), "frame": {"source_pos": idx},
                })  # fmt: skip
    finally:
        capture.release()
    return summarise(results, [], LineTruth.load(out / "line.json"))


def test_presence_on_a_real_line_video(tmp_path: Path) -> None:
    summary = _presence_on_line_video(tmp_path, seed=3)  # dark belt, grey metal and painted parts
    assert summary.parts_expected >= 6
    assert summary.duplicate_verdicts == 0
    assert summary.unmatched_verdicts == 0  # no verdict where there is no part
    # Bound: at least 90 % of the parts that cross the centre whole get a verdict (all of them on
    # this seed today; the margin leaves room for one blob lost to codec noise, not for a broken tracker).
    assert summary.parts_inspected >= 0.9 * summary.parts_expected


def test_presence_on_a_light_slatted_belt(tmp_path: Path) -> None:
    # Seed 7: light plastic slats with thin dark gaps under blotchy light, silver and painted parts. The
    # old edge term fired on every gap and the whole ROI became one blob: 0 of 8 parts inspected. Now 7 of
    # 8 (the one missed is a silver disc about as bright as the belt, seen only by its rim); the bound
    # leaves one more part for codec noise.
    summary = _presence_on_line_video(tmp_path, seed=7)
    assert summary.parts_expected >= 6
    assert summary.parts_inspected >= 0.75 * summary.parts_expected
    assert summary.duplicate_verdicts + summary.unmatched_verdicts <= 1


def test_presence_on_a_dark_belt_with_dark_parts(tmp_path: Path) -> None:
    # Seed 6: a dark rubber belt with uneven light and black-painted washers on it. Now 7 of 8 parts with 2
    # duplicate verdicts (before: 8 with 1 duplicate and 4 verdicts where there was no part). The part
    # missed is a black washer within ~5 grey levels of the belt, with gradients under 4 levels: below the
    # belt's own texture, so no threshold finds it without firing on the belt. Bound: one part less.
    summary = _presence_on_line_video(tmp_path, seed=6)
    assert summary.parts_expected >= 6
    assert summary.parts_inspected >= 0.75 * summary.parts_expected
    assert summary.unmatched_verdicts == 0
    assert summary.duplicate_verdicts <= 3


# ---- the other triggers ---------------------------------------------------------------------------


def test_interval_trigger_by_capture_time() -> None:
    trigger = IntervalTrigger(250)
    image = _belt()
    times = [0.0, 0.125, 0.25, 0.375, 0.5, 0.625, 1.5]
    fired = [t for n, t in enumerate(times) if trigger.update(_frame(image, n, mono_time=t))]
    assert fired == [0.0, 0.25, 0.5, 1.5]


def test_command_trigger() -> None:
    trigger = CommandTrigger(roi=(10, 20, 100, 50))
    image = _belt()
    assert trigger.update(_frame(image, 0)) == []  # nothing asked
    trigger.request()
    got = trigger.update(_frame(image, 1))
    assert [(i.frame.index, i.crop) for i in got] == [(1, (10, 20, 100, 50))]
    assert trigger.update(_frame(image, 2)) == []  # one request, one inspection
    trigger.request()
    trigger.request()  # two requests between frames share the next one
    assert len(trigger.update(_frame(image, 3))) == 1
    assert trigger.update(_frame(image, 4)) == []


def test_command_trigger_requests_from_threads() -> None:
    trigger = CommandTrigger()
    threads = [threading.Thread(target=trigger.request) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=5)
    assert len(trigger.update(_frame(_belt(), 0))) == 1
    assert trigger.update(_frame(_belt(), 1)) == []


@pytest.mark.parametrize(
    ("roi", "crop"),
    [
        (None, (0, 0, W, H)),  # no ROI: the whole frame
        ((100, 50, 200, 100), (100, 50, 200, 100)),  # inside: unchanged
        ((500, 300, 400, 400), (500, 300, 140, 60)),  # past the right and bottom edges
        ((-20, -10, 100, 50), (0, 0, 80, 40)),  # starts left of and above the frame
        ((-20, -10, 1000, 1000), (0, 0, W, H)),  # larger than the frame on every side
    ],
)
def test_continuous_trigger_clips_roi_to_frame(roi: Box | None, crop: Box) -> None:
    trigger = ContinuousTrigger(roi)
    for n in range(3):  # every frame
        got = trigger.update(_frame(_belt(), n))
        assert [(i.frame.index, i.crop, i.part_id) for i in got] == [(n, crop, None)]
