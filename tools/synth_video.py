"""Line video mode of ``inspect-model synth``: parts riding a conveyor past a fixed camera, with ground truth.

    inspect-model synth --video --out data/line --duration 20 --speed 240 --parts-per-minute 60

Writes ``DIR/line.avi`` (MJPG; ``--format mp4`` gives ``line.mp4`` in mp4v, as this OpenCV has no H.264),
``DIR/line.json`` (video metadata and one record per part) and ``DIR/line_parts.csv`` (the same, flat).
A part's centre moves as ``x(f) = x_at_frame0 + speed_px_per_frame * f`` at a fixed ``y_center``; boxes are
pixels with x1/y1 exclusive, clipped to the frame.

Speed comes from doing the expensive work once: each part is rendered once (the same renderer as the image
dataset) and pasted with its alpha every frame; the belt is one long pre-rendered strip that is sliced.
"""

from __future__ import annotations

import csv
import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from agent.status import ExitStatus, InspectError
from tools._cli_util import ensure_output_dir
from tools.synth import choice_problems, label_plan
from tools.synth_parts import (
    DEFECT_KINDS,
    PART_KINDS,
    Box,
    PartLayer,
    lighting_field,
    mask_box,
    render_belt,
    render_part,
)

__all__ = ["CSV_COLUMNS", "LinePart", "LineSpec", "generate_video"]

CSV_COLUMNS = (
    "id", "label", "part", "enter_frame", "exit_frame", "center_frame", "x0", "y0", "x1", "y1",
    "defect_x0", "defect_y0", "defect_x1", "defect_y1", "y_center", "x_at_frame0",
)  # fmt: skip
_FOURCC = {"avi": "MJPG", "mp4": "mp4v"}
_LAYOUT_STREAM, _PART_STREAM, _FRAME_STREAM = 0xB17, 0x9A27, 0xF7A3  # second seed words, one per use
_NOISE_FRAMES = 6  # per-frame sensor noise is drawn from a few pre-made frames: random enough, far cheaper
_MIN_DIAMETER = 24  # px; smaller parts would carry no visible defect


@dataclass(frozen=True)
class LineSpec:
    """What the line looks like. Speeds in pixels per second; ``fmt`` is ``avi`` or ``mp4``."""

    width: int = 1280
    height: int = 720
    fps: float = 30.0
    duration: float = 20.0
    speed: float = 240.0
    parts_per_minute: float = 60.0
    defect_ratio: float = 0.3
    kinds: tuple[str, ...] = DEFECT_KINDS
    parts: tuple[str, ...] = PART_KINDS
    gray_ratio: float = 0.3
    seed: int = 0
    fmt: str = "avi"

    @property
    def frame_count(self) -> int:
        return max(1, round(self.duration * self.fps))

    @property
    def pitch(self) -> float:
        """Mean distance between part centres, px."""
        return self.speed * 60.0 / self.parts_per_minute

    @property
    def diameter(self) -> float:
        """Part size: about half the frame height, but small enough that parts never touch."""
        return min(0.5 * self.height, 0.75 * self.pitch)

    def check(self) -> None:
        problems = []
        if self.width < 64 or self.height < 64:
            problems.append(f"--width/--height must be at least 64, got {self.width}x{self.height}")
        for name, value in (("--fps", self.fps), ("--duration", self.duration), ("--speed", self.speed),
                            ("--parts-per-minute", self.parts_per_minute)):  # fmt: skip
            if not value > 0:
                problems.append(f"{name} must be > 0, got {value}")
        problems += choice_problems(self.defect_ratio, self.kinds, self.parts, self.gray_ratio)
        if self.fmt not in _FOURCC:
            problems.append(f"--format must be one of {sorted(_FOURCC)}, got {self.fmt!r}")
        if not problems and self.diameter < _MIN_DIAMETER:
            problems.append(
                f"parts would be {self.diameter:.0f} px wide: at {self.speed:g} px/s a rate of "
                f"{self.parts_per_minute:g} parts/min leaves {self.pitch:.0f} px per part; "
                "lower --parts-per-minute or raise --speed"
            )
        if problems:
            raise InspectError("; ".join(problems), ExitStatus.USAGE)


@dataclass(frozen=True)
class LinePart:
    """Ground truth for one part that is visible in at least one frame."""

    id: int
    label: str
    part: str
    enter_frame: int
    exit_frame: int
    center_frame: int
    box_at_center: Box
    defect_box_at_center: Box | None
    y_center: float
    x_at_frame0: float


@dataclass(frozen=True)
class _Placed:
    layer: PartLayer
    x0: float  # centre x at frame 0
    y: float  # centre y
    half: float  # half the canvas side: the canvas's top-left is at (round(x - half), round(y - half))


def _left(placed: _Placed, frames: np.ndarray, v: float) -> np.ndarray:
    return np.round(placed.x0 + v * frames - placed.half).astype(np.int64)


def _clip(box: Box | None, dx: int, dy: int, width: int, height: int) -> Box | None:
    if box is None:
        return None
    x0, y0 = min(max(box[0] + dx, 0), width), min(max(box[1] + dy, 0), height)
    x1, y1 = min(max(box[2] + dx, 0), width), min(max(box[3] + dy, 0), height)
    return (x0, y0, x1, y1) if x1 > x0 and y1 > y0 else None


def _layout(spec: LineSpec) -> tuple[list[_Placed], int, int]:
    """Render every part that will be seen and place it on the belt; also return the belt's rows."""
    rng = np.random.default_rng([spec.seed, _LAYOUT_STREAM])
    width, height, frames = spec.width, spec.height, spec.frame_count
    v = spec.speed / spec.fps
    rail = round(0.07 * height)
    diameter = min(spec.diameter, 0.9 * (height - 2 * rail))
    side = math.ceil(diameter * 1.25) | 1  # room for the cast shadow; odd so the centre is a pixel
    jitter = max(0.0, min(0.2 * spec.pitch, spec.pitch - 1.1 * diameter))  # never closer than 1.1 diameters
    light = rng.uniform(0, 2 * math.pi)  # one lamp over the line
    sway = max(0.0, (height - 2 * rail - diameter) / 2 - 4) * 0.6
    x = width + diameter / 2 - rng.uniform(0.2, 1.0) * spec.pitch  # the belt is already loaded at frame 0
    centres: list[tuple[float, float]] = []
    while x + side / 2 + v * (frames - 1) > 0:  # every part whose canvas crosses the frame at some point
        centres.append((x, height / 2 + rng.uniform(-sway, sway)))
        x -= spec.pitch + rng.uniform(-jitter, jitter)
    # Exact class shares over the parts on screen, as for images: 0.3 means 30 %, not 30 % on average.
    labels = label_plan(len(centres), spec.seed, spec.defect_ratio, spec.kinds)
    placed: list[_Placed] = []
    for n, ((cx, cy), label) in enumerate(zip(centres, labels, strict=True)):
        prng = np.random.default_rng([spec.seed, _PART_STREAM, n])
        part = spec.parts[int(prng.integers(len(spec.parts)))]
        radius = diameter / 2 * prng.uniform(0.85, 1.0)
        gray = bool(prng.random() < spec.gray_ratio)
        layer = render_part(prng, label, part, (side, side), (side / 2, side / 2), radius, gray, light)
        placed.append(_Placed(layer, cx, cy, side / 2))
    return placed, rail, height - rail


def _ground_truth(spec: LineSpec, placed: list[_Placed]) -> tuple[list[LinePart], list[_Placed]]:
    """Which frames each part is seen in and where it is at its centre frame; unseen parts are dropped."""
    frames = np.arange(spec.frame_count)
    v = spec.speed / spec.fps
    truth: list[LinePart] = []
    seen: list[_Placed] = []
    for p in placed:
        box = mask_box(np.where(p.layer.alpha > 0.5, 255, 0).astype(np.uint8))
        if box is None:
            continue
        left = _left(p, frames, v)
        visible = np.flatnonzero((left + box[2] > 0) & (left + box[0] < spec.width))
        if visible.size == 0:
            continue
        center = int(np.argmin(np.abs(p.x0 + v * frames - spec.width / 2)))
        dx, dy = int(left[center]), round(p.y - p.half)
        clipped = _clip(box, dx, dy, spec.width, spec.height)
        truth.append(LinePart(
            id=len(truth), label=p.layer.label, part=p.layer.part, enter_frame=int(visible[0]),
            exit_frame=int(visible[-1]), center_frame=center, box_at_center=clipped or (0, 0, 0, 0),
            defect_box_at_center=_clip(mask_box(p.layer.mask), dx, dy, spec.width, spec.height),
            y_center=round(p.y, 2), x_at_frame0=round(p.x0, 3),
        ))  # fmt: skip
        seen.append(p)
    return truth, seen


def _rails(rng: np.random.Generator, rows: int, width: int) -> np.ndarray:
    """A brushed steel side rail (rows, width, 3) uint8, shaded like a rounded profile."""
    profile = 0.35 + 0.35 * np.sin(np.linspace(0.2, math.pi - 0.2, rows, dtype=np.float32))[:, None]
    brushed = cv2.blur(rng.standard_normal((rows, width), np.float32), (41, 1)) * 0.15
    grey = np.clip((profile * (1 + brushed)) * 255, 0, 255).astype(np.uint8)
    return np.repeat(grey[..., None], 3, axis=2)


def _paste(frame: np.ndarray, p: _Placed, left: int, top: int) -> None:
    """frame <- frame * under_gain + over, for the part of the canvas that falls inside the frame."""
    side = p.layer.over.shape[0]
    fx0, fy0 = max(left, 0), max(top, 0)
    fx1, fy1 = min(left + side, frame.shape[1]), min(top + side, frame.shape[0])
    if fx1 <= fx0 or fy1 <= fy0:
        return
    cut = (slice(fy0 - top, fy1 - top), slice(fx0 - left, fx1 - left))
    region = frame[fy0:fy1, fx0:fx1].astype(np.float32)
    mixed = region * p.layer.under_gain[cut] + p.layer.over[cut] * 255
    frame[fy0:fy1, fx0:fx1] = np.clip(mixed + 0.5, 0, 255).astype(np.uint8)


def generate_video(out: Path, spec: LineSpec, progress: bool = True) -> dict[str, Any]:
    """Write the line video and its ground truth to ``out``; return ``line.json``'s content + ``seconds``."""
    from tqdm import tqdm

    spec.check()
    ensure_output_dir(out)
    started = time.perf_counter()
    width, height, count = spec.width, spec.height, spec.frame_count
    v = spec.speed / spec.fps
    everything, belt_y0, belt_y1 = _layout(spec)
    truth, placed = _ground_truth(spec, everything)
    rng = np.random.default_rng([spec.seed, _FRAME_STREAM])
    travel = math.ceil(v * (count - 1)) + 2
    scale = spec.diameter / 170.0  # belt texture in proportion to the parts, as in 256 px images
    strip = render_belt(rng, (belt_y1 - belt_y0, width + travel), scale, avoid=(0.5, 0.5, 0.5))  # mid grey
    strip = np.clip(strip * 255 + 0.5, 0, 255).astype(np.uint8)
    rail_top, rail_bottom = _rails(rng, belt_y0, width), _rails(rng, height - belt_y1, width)[::-1]
    field = lighting_field(rng, (height, width)) / 1.25  # 128 is unity gain in the uint8 multiply below
    light = np.repeat(np.clip(field * 128, 0, 255).astype(np.uint8)[..., None], 3, axis=2)
    noise = rng.standard_normal((_NOISE_FRAMES, height, width, 3), np.float32) * rng.uniform(1.0, 2.5)
    lift = np.clip(noise, 0, 255).astype(np.uint8)
    drop = np.clip(-noise, 0, 255).astype(np.uint8)
    del noise
    flicker = rng.uniform(0.2, 0.5)  # cycles per frame: mains flicker aliased by the frame rate
    phase = rng.uniform(0, 2 * math.pi)

    path = out / f"line.{spec.fmt}"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*_FOURCC[spec.fmt]), spec.fps, (width, height))
    if not writer.isOpened():
        raise InspectError(f"OpenCV cannot write {_FOURCC[spec.fmt]} video to {path}", ExitStatus.CANT_CREATE)
    frame = np.empty((height, width, 3), np.uint8)
    try:
        for f in tqdm(range(count), desc="synth video", unit="frame", disable=None if progress else True):
            frame[:belt_y0] = rail_top
            frame[belt_y1:] = rail_bottom
            shift = round(v * f)
            frame[belt_y0:belt_y1] = strip[:, travel - shift - 2 : travel - shift - 2 + width]
            for gt, p in zip(truth, placed, strict=True):
                if gt.enter_frame <= f <= gt.exit_frame:
                    _paste(frame, p, round(p.x0 + v * f - p.half), round(p.y - p.half))
            gain = 1.25 * (1 + 0.012 * math.sin(2 * math.pi * flicker * f + phase) + rng.normal(0, 0.004))
            lit = cv2.multiply(frame, light, scale=gain / 128)
            k = int(rng.integers(_NOISE_FRAMES))
            writer.write(cv2.subtract(cv2.add(lit, lift[k]), drop[k]))
    finally:
        writer.release()
    _verify(path, count, width, height)

    meta: dict[str, Any] = {
        "path": path.name, "width": width, "height": height, "fps": spec.fps, "frame_count": count,
        "duration_s": count / spec.fps, "speed_px_per_s": spec.speed, "speed_px_per_frame": v,
        "parts_per_minute": spec.parts_per_minute, "defect_ratio": spec.defect_ratio, "seed": spec.seed,
        "codec": _FOURCC[spec.fmt], "belt_y0": belt_y0, "belt_y1": belt_y1,
        "box_format": "x0,y0,x1,y1 pixels, x1/y1 exclusive, clipped to the frame",
        "x_of_frame": "x_center(f) = x_at_frame0 + speed_px_per_frame * f",
        "parts": [_record(t) for t in truth],
    }  # fmt: skip
    (out / "line.json").write_text(json.dumps(meta, indent=2) + "\n")
    with (out / "line_parts.csv").open("w", newline="") as f:
        rows = csv.writer(f, lineterminator="\n")
        rows.writerow(CSV_COLUMNS)
        for t in truth:
            defect = t.defect_box_at_center or ("", "", "", "")
            frames = (t.enter_frame, t.exit_frame, t.center_frame)
            place = (t.y_center, t.x_at_frame0)
            rows.writerow([t.id, t.label, t.part, *frames, *t.box_at_center, *defect, *place])
    meta["seconds"] = round(time.perf_counter() - started, 2)
    return meta


def _record(part: LinePart) -> dict[str, Any]:
    """A part as JSON holds it (boxes as lists), so a reader gets back exactly what was returned."""
    record = asdict(part)
    for key in ("box_at_center", "defect_box_at_center"):
        record[key] = None if record[key] is None else list(record[key])
    return record


def _verify(path: Path, count: int, width: int, height: int) -> None:
    """Read the file back: a writer that silently dropped frames must not pass for a good video."""
    capture = cv2.VideoCapture(str(path))
    try:
        ok, first = capture.read()
        frames = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
    finally:
        capture.release()
    if not ok or first.shape[:2] != (height, width) or frames != count:
        got = f"{frames} frames of {first.shape[1]}x{first.shape[0]}" if ok else "nothing readable"
        expected = f"{count} of {width}x{height}"
        raise InspectError(f"{path} reads back as {got}, expected {expected}", ExitStatus.FAILURE)
