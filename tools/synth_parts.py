"""One synthetic part on a belt: geometry, surface, defect, lighting -> image, defect mask and box.

Nothing can be downloaded where this project is built, so every test, training run and demo uses these
images. They are made so that a CNN trained on them has to learn the defects, not a shortcut:

- good parts are not plain: turned parts show machining rings and a bow-tie sheen, plates are brushed, and
  every part (good or not) carries faint dust specks and smudges;
- each defect kind has its own shape: a thin smooth line (scratch, bright or dark), a dark jagged branching
  line (crack), a soft blob of another colour (spot), a round pit with a lit rim (hole), a bite out of the
  edge through which the belt shows (chip);
- part kind, finish, pose, scale, belt, lighting, blur and noise are drawn independently of the label.

Every random draw comes from the ``rng`` passed in, so an image is a pure function of its seed.
Sizes were set for a part of radius ~85 px (a 256 px image) and scale with the radius.
The defect painters live in ``tools.synth_defects``; the belt and the lighting in ``tools.synth_belt``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from tools.synth_belt import _SHIFT, _luma, _noise, _streaks, lighting_field, render_belt
from tools.synth_defects import (
    _blend,
    _fixed,
    chip_bite,
    paint_crack,
    paint_hole,
    paint_nuisances,
    paint_scratch,
    paint_spot,
)

__all__ = [
    "DEFECT_KINDS",
    "GOOD_LABEL",
    "PART_KINDS",
    "Box",
    "PartLayer",
    "SynthSample",
    "lighting_field",
    "mask_box",
    "render_belt",
    "render_part",
    "render_sample",
]

DEFECT_KINDS = ("scratch", "crack", "spot", "hole", "chip")
GOOD_LABEL = "good"
PART_KINDS = ("disc", "washer", "plate", "gear")

Box = tuple[int, int, int, int]  # x0, y0, x1, y1 in pixels; x1 and y1 exclusive, like a numpy slice
Array = np.ndarray

_REF_RADIUS = 85.0  # the part radius the pixel sizes below were tuned for
_PAINTS = (  # BGR, 0..1: blue, red, yellow, green, black, white, teal
    (0.62, 0.34, 0.12), (0.14, 0.13, 0.62), (0.12, 0.66, 0.82), (0.22, 0.50, 0.20),
    (0.17, 0.17, 0.18), (0.80, 0.80, 0.78), (0.52, 0.48, 0.10),
)  # fmt: skip


@dataclass(frozen=True)
class PartLayer:
    """A part on a transparent canvas; paste it as ``under * under_gain + over``."""

    over: Array  # (h, w, 3) float32 BGR 0..1, premultiplied by alpha
    under_gain: Array  # (h, w, 1) float32: (1 - alpha) x cast shadow; scales whatever lies underneath
    alpha: Array  # (h, w) float32 0..1: the part as it is now (a chip's bite removed)
    footprint: Array  # (h, w) uint8 0/255: the part as designed (a chip's bite included, through-holes not)
    mask: Array  # (h, w) uint8 0/255: defect pixels, all zero for a good part
    label: str
    part: str
    mean_colour: tuple[float, float, float]  # BGR 0..1, so the belt can be chosen to contrast with it


@dataclass(frozen=True)
class SynthSample:
    """One rendered image with its ground truth."""

    image: Array  # (size, size, 3) uint8 BGR
    mask: Array  # (size, size) uint8 0/255 defect pixels
    footprint: Array  # (size, size) uint8 0/255 the part as designed
    label: str  # GOOD_LABEL or one of DEFECT_KINDS
    part: str  # one of PART_KINDS
    gray: bool  # bare grey metal (True) or painted (False)
    box: Box | None  # defect box from the mask, None for a good part
    part_box: Box


def mask_box(mask: Array) -> Box | None:
    """The tight box (x1, y1 exclusive) around the non-zero pixels, or None when there are none."""
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        return None
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1


# --------------------------------------------------------------------------------------------- geometry
def _footprint(
    rng: np.random.Generator, part: str, shape: tuple[int, int], cx: float, cy: float, r: float, angle: float
) -> tuple[Array, float]:
    """The part's anti-aliased silhouette (uint8) and the radius of a turned hub step (0 for none)."""
    fp = np.zeros(shape, np.uint8)
    centre = (round(cx * 16), round(cy * 16))
    aa = cv2.LINE_AA
    hub = 0.0
    if part in ("disc", "washer"):
        cv2.circle(fp, centre, round(r * 16), 255, -1, aa, _SHIFT)
        if part == "washer":
            cv2.circle(fp, centre, round(r * rng.uniform(0.32, 0.5) * 16), 0, -1, aa, _SHIFT)
        elif rng.random() < 0.5:
            hub = r * rng.uniform(0.35, 0.6)
    elif part == "plate":
        phi = rng.uniform(0.45, 0.7)  # aspect: the corners sit on the radius-r circle before rounding
        a, b = r * math.cos(phi), r * math.sin(phi)
        rc = b * rng.uniform(0.1, 0.35)
        t = np.linspace(0.0, math.pi / 2, 8)
        signs = ((1, 1), (-1, 1), (-1, -1), (1, -1))
        local = np.concatenate(
            [np.stack([sx * (a - rc) + rc * np.cos(t + q * math.pi / 2),
                       sy * (b - rc) + rc * np.sin(t + q * math.pi / 2)], 1)
             for q, (sx, sy) in enumerate(signs)]
        )  # fmt: skip
        ca, sa = math.cos(angle), math.sin(angle)
        rot = np.array([[ca, -sa], [sa, ca]])

        def place(p: Array) -> Array:
            return p @ rot.T + (cx, cy)

        cv2.fillPoly(fp, [_fixed(place(local))], 255, aa, _SHIFT)
        layout = rng.choice(4, p=[0.3, 0.3, 0.3, 0.1])  # none, two diagonal, four corners, one centre
        hr = r * rng.uniform(0.06, 0.1)
        inset = max(rc, 2.3 * hr)
        holes = {0: [], 1: signs[::2], 2: signs, 3: []}[int(layout)]
        centres = [(sx * (a - inset), sy * (b - inset)) for sx, sy in holes]
        if layout == 3:
            centres = [(0.0, 0.0)]
        for hx, hy in centres:
            px, py = place(np.array([hx, hy]))
            cv2.circle(fp, (round(px * 16), round(py * 16)), round(hr * 16), 0, -1, aa, _SHIFT)
    else:  # gear: trapezoid teeth on a root circle, a bore and maybe a keyway
        teeth = int(rng.integers(10, 24))
        root = r * rng.uniform(0.8, 0.88)
        t = np.linspace(0.0, 2 * math.pi, teeth * 16, endpoint=False)
        rise = np.interp((t * teeth / (2 * math.pi)) % 1.0, [0, 0.15, 0.45, 0.6, 1], [0, 1, 1, 0, 0])
        rad = root + (r - root) * rise
        pts = np.stack([cx + rad * np.cos(t + angle), cy + rad * np.sin(t + angle)], 1)
        cv2.fillPoly(fp, [_fixed(pts)], 255, aa, _SHIFT)
        bore = r * rng.uniform(0.15, 0.28)
        cv2.circle(fp, centre, round(bore * 16), 0, -1, aa, _SHIFT)
        if rng.random() < 0.5:
            d = np.array([math.cos(angle), math.sin(angle)])
            n = np.array([-d[1], d[0]]) * bore * 0.3
            key = [(cx, cy) + d * bore * k + n * s for k, s in ((0.5, 1), (1.3, 1), (1.3, -1), (0.5, -1))]
            cv2.fillPoly(fp, [_fixed(np.array(key))], 0, aa, _SHIFT)
        hub = r * rng.uniform(0.45, 0.62)
    return fp, hub


# --------------------------------------------------------------------------------------------- surface
def _surface_tone(
    rng: np.random.Generator, shape: tuple[int, int], cx: float, cy: float, r: float, hub: float,
    turned: bool, gray: bool, light: float,
) -> Array:  # fmt: skip
    """Brightness texture around 1.0: machining rings and sheen for turned parts, brushing for plates."""
    gain = 1.0 if gray else 0.35  # paint hides most of the machining
    if turned:
        yy, xx = np.ogrid[: shape[0], : shape[1]]
        dx, dy = (xx - cx).astype(np.float32), (yy - cy).astype(np.float32)
        rad = np.sqrt(dx * dx + dy * dy)
        n = int(r * 1.2) + 2
        grooves = cv2.GaussianBlur(rng.standard_normal((1, n), np.float32), (0, 0), 0.8).ravel()
        grooves = grooves / (grooves.std() + 1e-6)
        idx = np.arange(n, dtype=np.float32)
        profile = 1 + gain * (
            rng.uniform(0.03, 0.07) * grooves
            + rng.uniform(0.015, 0.04) * np.sin(idx * 2 * math.pi / rng.uniform(2.5, 5.0))
        )
        tone = profile[np.minimum(rad, n - 1).astype(np.int32)]
        # Turned faces reflect in a bow tie across the light direction.
        theta = np.arctan2(dy, dx)
        tone *= 1 + gain * rng.uniform(0.08, 0.2) * np.cos(2 * (theta - light))
        if hub:
            tone *= np.where(rad < hub, rng.uniform(0.9, 1.08), 1.0).astype(np.float32)
            tone *= 1 - 0.18 * np.exp(-(((rad - hub) / 1.0) ** 2))
    else:
        tone = 1 + gain * rng.uniform(0.04, 0.08) * _streaks(rng, shape, int(r * 0.8), rng.uniform(0, 180))
    tone *= 1 + rng.uniform(0.01, 0.04) * _noise(rng, shape, r * 0.4)
    if not gray:  # orange peel
        peel = cv2.GaussianBlur(rng.standard_normal(shape, np.float32), (0, 0), 1.2)
        tone *= 1 + 0.015 * peel / (peel.std() + 1e-6)
    return tone.astype(np.float32)


# --------------------------------------------------------------------------------------------- the part
def render_part(
    rng: np.random.Generator,
    label: str,
    part: str,
    shape: tuple[int, int],
    center: tuple[float, float],
    radius: float,
    gray: bool,
    light: float,
) -> PartLayer:
    """Draw one part of ``radius`` px centred at ``center`` on an empty (h, w) canvas.

    ``label`` is GOOD_LABEL or a defect kind; ``gray`` picks bare grey metal over a painted finish;
    ``light`` is the direction (radians, image axes) the light comes from.
    """
    if label != GOOD_LABEL and label not in DEFECT_KINDS:
        raise ValueError(f"label must be {GOOD_LABEL!r} or one of {DEFECT_KINDS}, got {label!r}")
    if part not in PART_KINDS:
        raise ValueError(f"part must be one of {PART_KINDS}, got {part!r}")
    cx, cy = center
    s = radius / _REF_RADIUS
    lx, ly = math.cos(light), math.sin(light)
    fp, hub = _footprint(rng, part, shape, cx, cy, radius, rng.uniform(0, 2 * math.pi))
    footprint = np.where(fp > 127, 255, 0).astype(np.uint8)
    vis = fp.astype(np.float32) / 255
    mask = np.zeros(shape, np.uint8)
    lip = mask
    if label == "chip":
        bite = chip_bite(rng, fp, radius)
        vis *= 1 - bite.astype(np.float32) / 255
        missing = np.where((footprint > 0) & (bite > 127), 255, 0).astype(np.uint8)
        grow = 2 * max(1, round(2 * s)) + 1
        grown = cv2.dilate(missing, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (grow, grow)))
        mask = np.where((grown > 0) & (footprint > 0), 255, 0).astype(np.uint8)
        lip = np.where((mask > 0) & (missing == 0), 255, 0).astype(np.uint8)
    dist = cv2.distanceTransform((vis > 0.5).astype(np.uint8), cv2.DIST_L2, 3)

    if gray:
        base = rng.uniform(0.4, 0.66) * (1 + rng.uniform(-0.04, 0.04) * np.array([1, 0, -1]))
    else:
        base = np.asarray(_PAINTS[int(rng.integers(len(_PAINTS)))]) * rng.uniform(0.85, 1.1)
    base = np.clip(base, 0.05, 0.95).astype(np.float32)
    tone = _surface_tone(rng, shape, cx, cy, radius, hub, part != "plate", gray, light)
    colour = base * tone[..., None]
    # A chamfer on every edge: lit where it faces the light, shaded where it faces away.
    bevel = max(1.0, 1.5 * s)
    soft = cv2.GaussianBlur(vis, (0, 0), bevel)
    slope = cv2.Sobel(soft, cv2.CV_32F, 1, 0) * lx + cv2.Sobel(soft, cv2.CV_32F, 0, 1) * ly
    relief = 1 - slope * (bevel * 2.5 / 8 * (0.6 if gray else 0.4))  # Sobel is 8x the slope
    colour *= relief[..., None] * (0.8 + 0.2 * soft[..., None])  # and edges fall off a little

    if label == "scratch":
        mask = paint_scratch(rng, colour, dist, radius, s)
    elif label == "crack":
        mask = paint_crack(rng, colour, dist, radius, s, light)
    elif label == "spot":
        mask = paint_spot(rng, colour, dist, radius, base)
    elif label == "hole":
        mask = paint_hole(rng, colour, dist, radius, s, light)
    elif label == "chip":  # the fresh fracture face is brighter than the worn surface around it
        _blend(colour, (lip > 0).astype(np.float32) * (dist > 0) * 0.5, 0.85)
    paint_nuisances(rng, colour, dist, radius, s)

    yy, xx = np.ogrid[: shape[0], : shape[1]]
    hx, hy = (cx, cy) + radius * (0.35 * np.array([lx, ly]) + rng.normal(0, 0.15, 2))
    sigma = radius * rng.uniform(0.25, 0.5)
    glare = np.exp(-((xx - hx) ** 2 + (yy - hy) ** 2) / (2 * sigma * sigma)).astype(np.float32)
    shine = rng.uniform(0.1, 0.25) if gray else rng.uniform(0.04, 0.16)
    colour += (glare * shine * (1.2 - _luma(base)))[..., None]  # bright parts would just clip
    np.clip(colour, 0, 1, out=colour)

    offset = radius * rng.uniform(0.03, 0.07)
    move = np.array([[1, 0, -lx * offset], [0, 1, -ly * offset]], np.float32)
    shadow = cv2.warpAffine(vis, move, (shape[1], shape[0]))
    shadow = cv2.GaussianBlur(shadow, (0, 0), radius * rng.uniform(0.04, 0.08))
    under = (1 - vis) * (1 - rng.uniform(0.3, 0.55) * shadow)
    b, g, r = (colour * vis[..., None]).sum(axis=(0, 1)) / max(float(vis.sum()), 1.0)
    mean = (float(b), float(g), float(r))
    return PartLayer(colour * vis[..., None], under[..., None], vis, footprint, mask, label, part, mean)


def render_sample(
    rng: np.random.Generator,
    label: str,
    part: str,
    size: int = 256,
    gray: bool = False,
    line_context: float = 0.0,
) -> SynthSample:
    """One square image of one part on a belt, with the defect's mask and box (None for a good part).

    With probability ``line_context`` the image looks like the agent's crop of a part on a running line:
    the edges of the good parts before and after it intrude at the sides, and the frame went through
    JPEG (MJPEG cameras). A model trained on isolated parts alone read a neighbour's edge at the crop
    border as a defect: it flagged 37 % of good parts on the line against 7 % of good still images.
    """
    radius = size * rng.uniform(0.27, 0.36)
    room = min(size / 2 - radius - 3, 0.1 * size)
    cx, cy = size / 2 + rng.uniform(-room, room, 2)
    light = rng.uniform(0, 2 * math.pi)
    layer = render_part(rng, label, part, (size, size), (cx, cy), radius, gray, light)
    on_line = line_context > 0 and rng.random() < line_context
    under, over = layer.under_gain, layer.over
    if on_line:
        under, over = _with_neighbours(rng, layer, (cx, cy), radius, size, light)
    belt = render_belt(rng, (size, size), radius / _REF_RADIUS, layer.mean_colour)
    image = (belt * under + over) * lighting_field(rng, (size, size))[..., None]
    if rng.random() < 0.6:  # focus and motion: most cameras are slightly soft
        image = cv2.GaussianBlur(image, (0, 0), rng.uniform(0.3, 0.9))
    image *= 255
    image += rng.standard_normal(image.shape, np.float32) * (255 * rng.uniform(0.004, 0.018)) + 0.5
    pixels = np.clip(image, 0, 255, out=image).astype(np.uint8)
    if on_line:
        quality = int(rng.integers(55, 96))
        encoded = cv2.imencode(".jpg", pixels, [cv2.IMWRITE_JPEG_QUALITY, quality])[1]
        pixels = cv2.imdecode(encoded, cv2.IMREAD_COLOR)
    part_box = mask_box(layer.footprint) or (0, 0, size, size)
    return SynthSample(pixels, layer.mask, layer.footprint, label, part, gray, mask_box(layer.mask), part_box)


def _with_neighbours(
    rng: np.random.Generator,
    layer: PartLayer,
    center: tuple[float, float],
    radius: float,
    size: int,
    light: float,
) -> tuple[Array, Array]:
    """``layer``'s (under_gain, over) with good parts ahead of and behind it on the belt, cut by the
    image border as the presence trigger's crop (1.5x the part) cuts them."""
    under, over = layer.under_gain, layer.over
    cx, cy = center
    for side in (-1, 1):
        if rng.random() < 0.25:  # a gap in the flow: nothing on this side
            continue
        r = radius * rng.uniform(0.85, 1.15)
        gap = radius * rng.uniform(0.1, 0.8)  # edge to edge, along the belt
        x = cx + side * (radius + gap + r)
        y = cy + radius * rng.uniform(-0.35, 0.35)
        kind = PART_KINDS[int(rng.integers(len(PART_KINDS)))]
        other = render_part(rng, GOOD_LABEL, kind, (size, size), (x, y), r, bool(rng.random() < 0.3), light)
        # The inspected part lies on top where they overlap (they never should on a belt, but a
        # shadow may): its under_gain hides what is below it.
        over = other.over * layer.under_gain + over
        under = under * other.under_gain
    return under, over
