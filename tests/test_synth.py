"""``inspect-model synth``: the data every other test, training run and demo is built on.

Real files in tmp_path, real OpenCV reads; small sizes keep the whole module to a few seconds.
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from agent.status import ExitStatus, InspectError
from tools import synth
from tools.synth import MANIFEST_COLUMNS, class_counts, generate_images, label_plan
from tools.synth_parts import (
    DEFECT_KINDS,
    GOOD_LABEL,
    PART_KINDS,
    _with_neighbours,
    mask_box,
    render_part,
    render_sample,
)
from tools.synth_video import CSV_COLUMNS, LineSpec, generate_video

SIZE = 96  # small but still above the 64 px floor


def _read_manifest(out: Path) -> list[dict[str, str]]:
    with (out / "manifest.csv").open(newline="") as f:
        reader = csv.DictReader(f)
        assert tuple(reader.fieldnames or ()) == MANIFEST_COLUMNS
        return list(reader)


def _files(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="inspect-model")
    synth.add_parser(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(["synth", *argv])


@pytest.mark.parametrize(
    ("count", "ratio", "kinds", "expected"),
    [
        (1000, 0.5, DEFECT_KINDS, {"good": 500, **dict.fromkeys(DEFECT_KINDS, 100)}),  # the default
        (10, 0.5, DEFECT_KINDS, {"good": 5, **dict.fromkeys(DEFECT_KINDS, 1)}),
        (13, 0.5, ("scratch", "hole"), {"good": 6, "scratch": 4, "hole": 3}),  # 6.5 -> 7; extra to the first
        (4, 0.0, DEFECT_KINDS, {"good": 4, **dict.fromkeys(DEFECT_KINDS, 0)}),  # good only
        (3, 1.0, ("chip",), {"good": 0, "chip": 3}),  # defects only
        (5, 0.5, (), {"good": 5}),  # no kinds: nothing to make defective
    ],
)
def test_class_counts(count: int, ratio: float, kinds: tuple[str, ...], expected: dict[str, int]) -> None:
    assert class_counts(count, ratio, kinds) == expected
    plan = label_plan(count, 7, ratio, kinds)
    assert {label: plan.count(label) for label in expected} == expected


def test_label_plan_is_shuffled_but_fixed_by_seed() -> None:
    assert label_plan(50, 1, 0.5, DEFECT_KINDS) == label_plan(50, 1, 0.5, DEFECT_KINDS)
    assert label_plan(50, 1, 0.5, DEFECT_KINDS) != label_plan(50, 2, 0.5, DEFECT_KINDS)
    assert label_plan(50, 1, 0.5, DEFECT_KINDS)[:25].count(GOOD_LABEL) not in (0, 25)  # not sorted by class


@pytest.mark.parametrize("label", [GOOD_LABEL, *DEFECT_KINDS])
@pytest.mark.parametrize("part", PART_KINDS)
def test_defect_lies_on_the_part_and_the_box_matches_the_mask(label: str, part: str) -> None:
    for i in range(3):  # a few poses, finishes and sizes per pair
        sample = render_sample(np.random.default_rng([11, i]), label, part, 128, gray=i == 0)
        assert sample.image.shape == (128, 128, 3) and sample.image.dtype == np.uint8
        assert sample.mask.shape == (128, 128) and set(np.unique(sample.mask)) <= {0, 255}
        if label == GOOD_LABEL:
            assert sample.box is None and not sample.mask.any()
            continue
        assert sample.box == mask_box(sample.mask) and sample.box is not None
        x0, y0, x1, y1 = sample.box
        assert 0 <= x0 < x1 <= 128 and 0 <= y0 < y1 <= 128
        # Every defect pixel is on the part as designed (a chip is the part that broke off).
        off_part = (sample.mask > 0) & (sample.footprint == 0)
        assert not off_part.any(), f"{label} on {part}: {int(off_part.sum())} mask pixels off the part"
        assert np.count_nonzero(sample.mask) >= 12, f"{label} on {part} is too small to see"


@pytest.mark.parametrize("label", DEFECT_KINDS)
def test_defects_stand_out_from_the_surface_around_them(label: str) -> None:
    # Mean colour distance (sum over B, G, R) between the defect's pixels and the part just around it.
    # Over 750 images at 256 px the weakest defect scored 30 and the median 100-230: visible, not glaring.
    ring_kernel = np.ones((9, 9), np.uint8)
    for i in range(8):
        sample = render_sample(np.random.default_rng([5, i]), label, PART_KINDS[i % 4], 128, gray=i % 3 == 0)
        inside = sample.mask > 0
        ring = (cv2.dilate(sample.mask, ring_kernel) > 0) & ~inside & (sample.footprint > 0)
        pixels = sample.image.astype(np.float64)
        contrast = np.abs(pixels[inside] - pixels[ring].mean(axis=0)).sum(axis=1).mean()
        assert contrast > 25, f"{label} #{i} on a {PART_KINDS[i % 4]} hardly shows: {contrast:.0f}"


def test_line_context_adds_neighbours_at_the_sides_but_not_to_the_mask() -> None:
    # The neighbours' edges cover part of the side strips (where the crop cuts them) and leave the
    # inspected part alone; the defect mask stays the inspected part's own.
    covered_sides = 0
    for i in range(8):
        rng = np.random.default_rng([3, i])
        layer = render_part(rng, "crack", PART_KINDS[i % 4], (128, 128), (64.0, 64.0), 40.0, False, 0.5)
        under, over = _with_neighbours(rng, layer, (64.0, 64.0), 40.0, 128, 0.5)
        assert under.shape == layer.under_gain.shape and over.shape == layer.over.shape
        on_part = layer.alpha > 0.99
        assert np.allclose(over[on_part], layer.over[on_part], atol=1e-5), "a neighbour covers the part"
        neighbour = (under[..., 0] < 0.2) & (layer.alpha < 0.01)
        covered_sides += int(neighbour[:, :16].any() or neighbour[:, -16:].any())
    assert covered_sides >= 5, "most line-context crops should show a neighbour's edge at a side"
    sample = render_sample(np.random.default_rng([3, 0]), "crack", "disc", 128, line_context=1.0)
    assert sample.box == mask_box(sample.mask) and not ((sample.mask > 0) & (sample.footprint == 0)).any()


def test_image_dataset_layout_manifest_and_masks(tmp_path: Path) -> None:
    out = tmp_path / "parts"
    summary = generate_images(out, 24, seed=3, size=SIZE, progress=False)
    rows = _read_manifest(out)
    assert len(rows) == 24
    assert summary["classes"] == class_counts(24, 0.5, DEFECT_KINDS)
    assert json.loads((out / "synth.json").read_text())["classes"] == summary["classes"]
    for row in rows:
        label = row["label"]
        assert row["path"].startswith(f"{label}/") and row["part"] in PART_KINDS
        assert (row["width"], row["height"], row["seed"]) == (str(SIZE), str(SIZE), "3")
        image = cv2.imread(str(out / row["path"]), cv2.IMREAD_UNCHANGED)
        assert image.shape == (SIZE, SIZE, 3)
        mask_path = out / "masks" / row["path"]
        if label == GOOD_LABEL:
            assert row["defect"] == "0" and not mask_path.exists()
            assert [row[k] for k in ("x0", "y0", "x1", "y1")] == ["", "", "", ""]
            continue
        assert row["defect"] == "1"
        mask = cv2.imread(str(mask_path), cv2.IMREAD_UNCHANGED)
        assert mask.shape == (SIZE, SIZE) and mask.any()
        assert mask_box(mask) == tuple(int(row[k]) for k in ("x0", "y0", "x1", "y1"))
    counted = {label: len(list((out / label).glob("*.png"))) for label in summary["classes"]}
    assert counted == summary["classes"]


def test_same_seed_same_bytes_other_seed_other_images(tmp_path: Path) -> None:
    first, again, other = (tmp_path / name for name in ("a", "b", "c"))
    for out, seed in ((first, 0), (again, 0), (other, 1)):
        generate_images(out, 12, seed=seed, size=SIZE, progress=False)
    assert _files(first) == _files(again)
    images = {k: v for k, v in _files(first).items() if k.endswith(".png") and not k.startswith("masks")}
    others = _files(other)
    assert sum(others.get(name) == data for name, data in images.items()) == 0


def test_each_image_is_a_function_of_seed_and_index(tmp_path: Path) -> None:
    # The documented recipe: image i comes from default_rng([seed, i]) alone, whatever else is generated.
    generate_images(tmp_path, 6, seed=9, size=SIZE, progress=False)
    for index, row in enumerate(_read_manifest(tmp_path)):
        rng = np.random.default_rng([9, index])
        part = PART_KINDS[int(rng.integers(len(PART_KINDS)))]
        sample = render_sample(rng, row["label"], part, SIZE, gray=bool(rng.random() < 0.3))
        assert part == row["part"]
        assert np.array_equal(cv2.imread(str(tmp_path / row["path"])), sample.image)


def test_cli_writes_a_small_dataset(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = _parse(["--out", str(tmp_path), "--count", "8", "--size", str(SIZE), "--kinds", "scratch,chip",
                   "--parts", "gear", "--defect-ratio", "0.5", "--seed", "4"])  # fmt: skip
    assert args.func is synth.run
    assert synth.run(args) == ExitStatus.OK
    rows = _read_manifest(tmp_path)
    assert {r["label"] for r in rows} == {"good", "scratch", "chip"} and {r["part"] for r in rows} == {"gear"}
    assert "wrote 8 images" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "status"),
    [
        (["--count", "0"], ExitStatus.USAGE),  # nothing to make
        (["--kinds", "scratch,dent"], ExitStatus.USAGE),  # unknown defect kind
        (["--parts", "bolt"], ExitStatus.USAGE),  # unknown part kind
        (["--defect-ratio", "1.5"], ExitStatus.USAGE),  # not a share
        (["--size", "32"], ExitStatus.USAGE),  # too small to show a defect
        (["--video", "--parts-per-minute", "6000"], ExitStatus.USAGE),  # parts would not fit on the belt
    ],
)
def test_bad_options_are_usage_errors(tmp_path: Path, argv: list[str], status: ExitStatus) -> None:
    with pytest.raises(InspectError) as err:
        synth.run(_parse(["--out", str(tmp_path / "out"), *argv]))
    assert err.value.status == status


@pytest.mark.parametrize("mode", [[], ["--video", "--width", "160", "--height", "96", "--duration", "0.5"]])
def test_output_under_a_regular_file_cannot_be_created(tmp_path: Path, mode: list[str]) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    with pytest.raises(InspectError) as err:
        synth.run(_parse(["--out", str(blocker / "data"), "--count", "2", *mode]))
    assert err.value.status == ExitStatus.CANT_CREATE


def test_an_earlier_run_is_replaced_without_stale_images(tmp_path: Path) -> None:
    generate_images(tmp_path, 10, size=SIZE, progress=False)
    generate_images(tmp_path, 4, size=SIZE, progress=False)
    assert len(list(tmp_path.rglob("*.png"))) == 4 + 2  # 4 images, 2 of them defects with masks
    assert len(_read_manifest(tmp_path)) == 4


def test_images_from_elsewhere_are_not_mixed_in_unless_asked(tmp_path: Path) -> None:
    (tmp_path / "good").mkdir()
    cv2.imwrite(str(tmp_path / "good" / "line3.png"), np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(InspectError) as err:
        generate_images(tmp_path, 4, size=SIZE, progress=False)
    assert err.value.status == ExitStatus.CANT_CREATE and "--overwrite" in str(err.value)
    generate_images(tmp_path, 4, size=SIZE, overwrite=True, progress=False)
    assert (tmp_path / "good" / "line3.png").exists() and len(_read_manifest(tmp_path)) == 4


# ------------------------------------------------------------------------------------------------ video
def _frames(path: Path) -> list[np.ndarray]:
    capture = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    capture.release()
    return frames


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.astype(np.float64).ravel(), b.astype(np.float64).ravel()
    return float(np.corrcoef(a, b)[0, 1])


SMALL_LINE = LineSpec(width=320, height=180, fps=30, duration=3, speed=160, parts_per_minute=80, seed=2,
                      defect_ratio=0.5)  # fmt: skip


@pytest.mark.parametrize("fmt", ["avi", "mp4"])
def test_line_video_reads_back_with_the_recorded_frames_and_parts(tmp_path: Path, fmt: str) -> None:
    spec = LineSpec(**{**SMALL_LINE.__dict__, "fmt": fmt})
    meta = generate_video(tmp_path, spec, progress=False)
    assert meta == {**json.loads((tmp_path / "line.json").read_text()), "seconds": meta["seconds"]}
    frames = _frames(tmp_path / f"line.{fmt}")
    assert len(frames) == meta["frame_count"] == 90
    assert frames[0].shape == (180, 320, 3)
    v = meta["speed_px_per_frame"]
    assert v == pytest.approx(160 / 30)
    with (tmp_path / "line_parts.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert tuple(rows[0]) == CSV_COLUMNS and len(rows) == len(meta["parts"]) >= 3
    checked = 0
    for part, row in zip(meta["parts"], rows, strict=True):
        assert row["label"] == part["label"] and int(row["center_frame"]) == part["center_frame"]
        assert 0 <= part["enter_frame"] <= part["center_frame"] <= part["exit_frame"] < 90
        x0, y0, x1, y1 = part["box_at_center"]
        if x0 == 0 or x1 == 320:
            continue  # cut by the frame edge: nothing to compare against
        # The recorded motion x(f) = x_at_frame0 + v f puts the centre in the middle of the box.
        assert abs((x0 + x1) / 2 - (part["x_at_frame0"] + v * part["center_frame"])) < 0.1 * (x1 - x0)
        assert abs((y0 + y1) / 2 - part["y_center"]) < 0.1 * (y1 - y0)
        # Three frames later the same pixels have moved by 3 v: the part travels where the record says.
        c = part["center_frame"]
        later = c + 3 if c + 3 < 90 and x1 + round(3 * v) <= 320 else c - 3
        dx = round(v * (later - c))
        if x0 + dx < 0 or x1 + dx > 320:
            continue
        here = frames[c][y0:y1, x0:x1]
        there = frames[later][y0:y1, x0 + dx : x1 + dx]
        still = frames[later][y0:y1, x0:x1]  # where the part was: it has moved on
        assert _corr(here, there) > 0.9 > _corr(here, still) + 0.05
        checked += 1
        if part["defect_box_at_center"] is not None:
            dx0, dy0, dx1, dy1 = part["defect_box_at_center"]
            assert x0 <= dx0 < dx1 <= x1 and y0 <= dy0 < dy1 <= y1
    assert checked >= 2


def test_line_video_is_deterministic(tmp_path: Path) -> None:
    spec = LineSpec(**{**SMALL_LINE.__dict__, "duration": 1.0})
    a = generate_video(tmp_path / "a", spec, progress=False)
    b = generate_video(tmp_path / "b", spec, progress=False)
    assert a["parts"] == b["parts"]
    assert (tmp_path / "a" / "line.avi").read_bytes() == (tmp_path / "b" / "line.avi").read_bytes()
    other = generate_video(tmp_path / "c", LineSpec(**{**spec.__dict__, "seed": 3}), progress=False)
    assert other["parts"] != a["parts"]


def test_line_parts_are_visible_against_the_belt(tmp_path: Path) -> None:
    meta = generate_video(tmp_path, SMALL_LINE, progress=False)
    frames = _frames(tmp_path / "line.avi")
    for part in meta["parts"]:
        x0, y0, x1, y1 = part["box_at_center"]
        frame = frames[part["center_frame"]].astype(np.float64)
        belt = frame[meta["belt_y0"] + 2 : meta["belt_y0"] + 8]  # a strip of belt above every part
        inside = frame[y0:y1, x0:x1]
        assert abs(inside.mean() - belt.mean()) > 12 or inside.std() > 2 * belt.std(), f"part {part['id']}"
