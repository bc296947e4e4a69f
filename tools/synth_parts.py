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
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

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

_SHIFT = 4  # cv2 draws with 4 fractional bits, so small parts stay round and lines sub-pixel accurate
_REF_RADIUS = 85.0  # the part radius the pixel sizes below were tuned for
_LUMA = np.array([0.114, 0.587, 0.299], np.float32)  # BGR weights
_PAINTS = (  # BGR, 0..1: blue, red, yellow, green, black, white, teal
    (0.62, 0.34, 0.12), (0.14, 0.13, 0.62), (0.12, 0.66, 0.82), (0.22, 0.50, 0.20),
    (0.17, 0.17, 0.18), (0.80, 0.80, 0.78), (0.52, 0.48, 0.10),
)  # fmt: skip
# BGR stains: rust, oil, heat tint, yellowed coolant residue
_STAINS = ((0.10, 0.24, 0.46), (0.10, 0.10, 0.11), (0.62, 0.20, 0.42), (0.15, 0.45, 0.55))


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


def _fixed(points: Array) -> Array:
    return np.round(np.asarray(points, np.float64) * (1 << _SHIFT)).astype(np.int32)


def _noise(rng: np.random.Generator, shape: tuple[int, int], cell: float) -> Array:
    """Zero-mean unit-std noise whose blobs are about ``cell`` px wide (a small grid resized up)."""
    h, w = shape
    grid = rng.standard_normal((max(2, int(h / cell) + 2), max(2, int(w / cell) + 2)), np.float32)
    big = cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC)
    return (big - big.mean()) / (big.std() + 1e-6)


def _streaks(rng: np.random.Generator, shape: tuple[int, int], length: int, angle_deg: float) -> Array:
    """Unit-std noise smeared along one direction: brushed metal, belt fibres."""
    h, w = shape
    base = cv2.blur(rng.standard_normal((h, w), np.float32), (max(3, length), 1))
    if angle_deg:
        rot = cv2.getRotationMatrix2D((w / 2, h / 2), angle_deg, 1.0)
        base = cv2.warpAffine(base, rot, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    return (base - base.mean()) / (base.std() + 1e-6)


def _blend(colour: Array, alpha: Array, tint: Array | tuple[float, ...] | float) -> None:
    """colour <- colour + alpha * (tint - colour), in place; ``alpha`` is (h, w)."""
    colour += alpha[..., None] * (np.asarray(tint, np.float32) - colour)


def _luma(colour: Array | tuple[float, ...]) -> float:
    return float(np.asarray(colour, np.float32) @ _LUMA)


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


def _chip_bite(rng: np.random.Generator, fp: Array, r: float) -> Array:
    """A jagged bite out of the outer rim, 10-20 % of the radius deep (uint8 0/255, full size)."""
    solid = fp > 127
    contours, _ = cv2.findContours(solid.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    rim = max(contours, key=len).reshape(-1, 2)
    soft = cv2.GaussianBlur(fp.astype(np.float32), (0, 0), 3.0)
    grad_x, grad_y = cv2.Sobel(soft, cv2.CV_32F, 1, 0), cv2.Sobel(soft, cv2.CV_32F, 0, 1)
    best: tuple[float, Array] = (-1.0, np.zeros_like(fp))
    for _ in range(8):  # a bite landing between two gear teeth removes little: try another spot
        px, py = rim[int(rng.integers(len(rim)))]
        gx, gy = float(grad_x[py, px]), float(grad_y[py, px])
        norm = math.hypot(gx, gy) or 1.0
        bite_r, depth = r * rng.uniform(0.14, 0.26), r * rng.uniform(0.1, 0.2)
        bx, by = px - gx / norm * (bite_r - depth), py - gy / norm * (bite_r - depth)  # outwards
        k = int(rng.integers(9, 15))
        ang = np.linspace(0, 2 * math.pi, k, endpoint=False) + rng.uniform(-0.25, 0.25, k)
        rad = bite_r * rng.uniform(0.72, 1.12, k)
        bite = np.zeros_like(fp)
        outline = np.stack([bx + rad * np.cos(ang), by + rad * np.sin(ang)], 1)
        cv2.fillPoly(bite, [_fixed(outline)], 255, cv2.LINE_AA, _SHIFT)
        # The area a round bite of this depth takes out of a straight edge: a circular segment.
        segment = bite_r**2 * math.acos(1 - depth / bite_r) - (bite_r - depth) * math.sqrt(
            max(0.0, 2 * bite_r * depth - depth * depth)
        )
        share = float(np.count_nonzero(solid & (bite > 127))) / max(segment, 1.0)
        if share > best[0]:
            best = (share, bite)
        if share > 0.7:
            break
    return best[1]


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


def _pick(rng: np.random.Generator, dist: Array, low: float, high: float = math.inf) -> tuple[float, float]:
    """A random pixel whose distance to the part's edge is in [low, high) (the deepest one if none is)."""
    ys, xs = np.nonzero((dist >= low) & (dist < high))
    if ys.size == 0:
        y, x = np.unravel_index(int(np.argmax(dist)), dist.shape)
        return float(x), float(y)
    i = int(rng.integers(ys.size))
    return float(xs[i]), float(ys[i])


# --------------------------------------------------------------------------------------------- defects
def _scratch(rng: np.random.Generator, colour: Array, dist: Array, r: float, s: float) -> Array:
    """1-3 thin near-parallel lines, straight or gently bent, 25-60 % of the diameter long."""
    inside = (dist >= 2).astype(np.float32)
    x, y = _pick(rng, dist, 0.25 * r)
    theta = rng.uniform(0, math.pi)
    best: tuple[float, Array] = (-1.0, inside)
    for _ in range(6):  # on a washer or a plate with holes, retry until the line stays on metal
        canvas = np.zeros(dist.shape, np.uint8)
        for i in range(int(rng.choice(3, p=[0.6, 0.3, 0.1])) + 1):
            length = r * rng.uniform(0.5, 1.2) * (1.0 if i == 0 else rng.uniform(0.4, 0.8))
            a = theta + (0.0 if i == 0 else rng.normal(0, 0.08))
            d, n = np.array([math.cos(a), math.sin(a)]), np.array([-math.sin(a), math.cos(a)])
            off = 0.0 if i == 0 else rng.uniform(3, 9) * s * rng.choice([-1, 1])
            t = np.linspace(-0.5, 0.5, 24)[:, None]
            bend = rng.uniform(-0.12, 0.12) * length
            pts = (x, y) + t * length * d + (off + (1 - 4 * t * t) * bend) * n
            thick = max(1, round(rng.uniform(1.2, 2.6) * s))
            cv2.polylines(canvas, [_fixed(pts)], False, 255, thick, cv2.LINE_AA, _SHIFT)
        line = canvas.astype(np.float32) / 255
        share = float((line * inside).sum() / max(line.sum(), 1.0))
        if share > best[0]:
            best = (share, line * inside)
        if share > 0.85:
            break
        x, y = _pick(rng, dist, 0.25 * r)
        theta = rng.uniform(0, math.pi)
    alpha = best[1]
    # Bright (fresh metal) or dark (a groove in shadow), whichever the surface under it lets stand out.
    under = float((colour @ _LUMA * alpha).sum() / max(float(alpha.sum()), 1.0))
    bright = rng.random() < float(np.interp(under, [0.3, 0.6], [0.9, 0.1]))
    shade = rng.uniform(0.85, 1.0) if bright else rng.uniform(0.05, 0.18)
    _blend(colour, alpha * rng.uniform(0.75, 0.95), shade)
    return np.where(alpha > 0.25, 255, 0).astype(np.uint8)


def _crack(rng: np.random.Generator, colour: Array, dist: Array, r: float, s: float, light: float) -> Array:
    """A dark zig-zag line, thick where it starts (usually at an edge), with 1-3 thinner branches."""
    step = r * rng.uniform(0.06, 0.1)
    # Away from the nearest edge, whether that is the rim, a bore or a hole.
    uphill_x = cv2.Sobel(dist, cv2.CV_32F, 1, 0, ksize=5)
    uphill_y = cv2.Sobel(dist, cv2.CV_32F, 0, 1, ksize=5)

    def walk(x: float, y: float, heading: float, length: float) -> Array:
        pts = [(x, y)]
        for _ in range(max(2, int(length / step))):
            heading += rng.normal(0, 0.12)  # the crack's course drifts slowly; each segment zig-zags on it
            a = heading + rng.normal(0, 0.55)
            x, y = x + step * math.cos(a), y + step * math.sin(a)
            pts.append((x, y))
        return np.array(pts)

    best: tuple[float, Array] = (-1.0, np.zeros(dist.shape, np.uint8))
    for _ in range(5):  # keep the crack on the part: retry when most of it ran off an edge
        from_edge = rng.random() < 0.7
        x, y = _pick(rng, dist, 2, 0.08 * r) if from_edge else _pick(rng, dist, 0.25 * r)
        inward = math.atan2(float(uphill_y[int(y), int(x)]), float(uphill_x[int(y), int(x)]))
        heading = inward + rng.uniform(-0.5, 0.5) if from_edge else rng.uniform(0, 2 * math.pi)
        main = walk(x, y, heading, r * rng.uniform(0.6, 1.1))
        canvas = np.zeros(dist.shape, np.uint8)
        widest = rng.uniform(2.0, 3.2) * s
        for i in range(len(main) - 1):
            thick = max(1, round(widest * (1 - 0.6 * i / len(main))))
            a, b = _fixed(main[i]), _fixed(main[i + 1])
            cv2.line(canvas, (a[0], a[1]), (b[0], b[1]), 255, thick, cv2.LINE_AA, _SHIFT)
        for _ in range(int(rng.integers(1, 4))):
            j = int(rng.integers(1, len(main) - 1))
            turn = rng.choice([-1, 1]) * rng.uniform(0.4, 1.0)
            branch = walk(main[j, 0], main[j, 1], heading + turn, r * rng.uniform(0.15, 0.4))
            cv2.polylines(canvas, [_fixed(branch)], False, 255, max(1, round(1.4 * s)), cv2.LINE_AA, _SHIFT)
        drawn = int(np.count_nonzero(canvas > 64))
        share = int(np.count_nonzero((canvas > 64) & (dist >= 1))) / max(1, drawn)
        if share > best[0]:
            best = (share, canvas)
        if share > 0.8:
            break
    alpha = best[1].astype(np.float32) / 255 * (dist >= 1)
    # The lip on the far side of the gap catches the light: that is what shows a crack on a dark part.
    lift = np.array([[1, 0, -math.cos(light) * 1.3 * s], [0, 1, -math.sin(light) * 1.3 * s]], np.float32)
    lip = np.clip(cv2.warpAffine(alpha, lift, alpha.shape[::-1]) - alpha, 0, 1) * (dist >= 1)
    under = float((colour @ _LUMA * alpha).sum() / max(float(alpha.sum()), 1.0))
    _blend(colour, lip * float(np.interp(under, [0.2, 0.5], [0.7, 0.25])), 0.8)
    _blend(colour, alpha * rng.uniform(0.85, 1.0), rng.uniform(0.03, 0.1))
    return np.where(alpha > 0.25, 255, 0).astype(np.uint8)


def _spot(rng: np.random.Generator, colour: Array, dist: Array, r: float, part_colour: Array) -> Array:
    """A soft-edged irregular stain (rust, oil, heat tint, dried coolant) that differs from the part."""
    radius = r * rng.uniform(0.08, 0.21)
    x, y = _pick(rng, dist, radius * 1.1)
    blob = np.zeros(dist.shape, np.float32)
    for _ in range(int(rng.integers(3, 6))):
        ox, oy = rng.normal(0, 0.4 * radius, 2)
        axes = (round(radius * rng.uniform(0.45, 0.9) * 16), round(radius * rng.uniform(0.35, 0.8) * 16))
        centre = (round((x + ox) * 16), round((y + oy) * 16))
        cv2.ellipse(blob, centre, axes, rng.uniform(0, 180), 0, 360, 1.0, -1, cv2.LINE_AA, _SHIFT)
    blob = cv2.GaussianBlur(blob, (0, 0), radius * rng.uniform(0.15, 0.3)).astype(np.float32)
    # A stain must stand out from this part: in brightness, or clearly in colour.
    stand_out = [3 * abs(_luma(c) - _luma(part_colour)) + float(np.abs(np.subtract(c, part_colour)).sum())
                 for c in _STAINS]  # fmt: skip
    options = [c for c, d in zip(_STAINS, stand_out, strict=True) if d > 1.1]
    options = options or [_STAINS[int(np.argmax(stand_out))]]
    stain = np.asarray(options[int(rng.integers(len(options)))], np.float32) * rng.uniform(0.9, 1.1)
    grain = 1 + 0.25 * _noise(rng, dist.shape, max(1.5, radius / 5))  # stains are mottled, pits are not
    _blend(colour, np.clip(blob * grain, 0, 1) * rng.uniform(0.8, 0.97) * (dist >= 1), np.clip(stain, 0, 1))
    return np.where((blob > 0.4) & (dist >= 1), 255, 0).astype(np.uint8)


def _hole(rng: np.random.Generator, colour: Array, dist: Array, r: float, s: float, light: float) -> Array:
    """A dark round pit; its far wall catches the light and its rim is lit on the side facing the light."""
    radius = r * rng.uniform(0.05, 0.12)
    x, y = _pick(rng, dist, radius + 3 * s)
    lx, ly = math.cos(light), math.sin(light)
    ring = max(1.2, 0.3 * radius)

    def disc(cx: float, cy: float, rad: float) -> Array:
        out = np.zeros(dist.shape, np.uint8)
        cv2.circle(out, (round(cx * 16), round(cy * 16)), round(rad * 16), 255, -1, cv2.LINE_AA, _SHIFT)
        return out.astype(np.float32) / 255

    rim, pit = disc(x, y, radius + ring), disc(x, y, radius)
    yy, xx = np.ogrid[: dist.shape[0], : dist.shape[1]]
    facing = ((xx - x) * lx + (yy - y) * ly) / (radius + ring)  # +1 on the side toward the light
    _blend(colour, (rim - pit) * np.clip(0.55 + 0.45 * facing, 0, 1) * 0.9, 0.95)  # a burr, lit
    _blend(colour, pit * rng.uniform(0.85, 0.97), rng.uniform(0.03, 0.1))
    wall = pit * (1 - disc(x - 0.35 * radius * lx, y - 0.35 * radius * ly, radius * 0.8))
    _blend(colour, wall * 0.6, rng.uniform(0.25, 0.4))  # the wall across from the light is lit
    return np.where(rim > 0.5, 255, 0).astype(np.uint8)


def _nuisances(rng: np.random.Generator, colour: Array, dist: Array, r: float, s: float) -> None:
    """Benign marks on any part: faint dust specks (far smaller and fainter than a hole) and smudges."""
    ys, xs = np.nonzero(dist >= 2)
    if ys.size:
        dark, light = np.zeros(dist.shape, np.float32), np.zeros(dist.shape, np.float32)
        for i in rng.integers(ys.size, size=int(rng.poisson(5))):
            at = (round(float(xs[i]) * 16), round(float(ys[i]) * 16))
            size = round(rng.uniform(0.5, 1.2) * s * 16)
            canvas = dark if rng.random() < 0.5 else light
            cv2.circle(canvas, at, size, rng.uniform(0.15, 0.35), -1, cv2.LINE_AA, _SHIFT)
        _blend(colour, dark, 0.15)
        _blend(colour, light, 0.9)
    if rng.random() < 0.4:
        x, y = _pick(rng, dist, 0.2 * r)
        yy, xx = np.ogrid[: dist.shape[0], : dist.shape[1]]
        sigma = r * rng.uniform(0.12, 0.3)
        smudge = np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * sigma * sigma)).astype(np.float32)
        _blend(colour, smudge * rng.uniform(0.03, 0.07) * (dist > 0), rng.uniform(0.2, 0.5))


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
        bite = _chip_bite(rng, fp, radius)
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
        mask = _scratch(rng, colour, dist, radius, s)
    elif label == "crack":
        mask = _crack(rng, colour, dist, radius, s, light)
    elif label == "spot":
        mask = _spot(rng, colour, dist, radius, base)
    elif label == "hole":
        mask = _hole(rng, colour, dist, radius, s, light)
    elif label == "chip":  # the fresh fracture face is brighter than the worn surface around it
        _blend(colour, (lip > 0).astype(np.float32) * (dist > 0) * 0.5, 0.85)
    _nuisances(rng, colour, dist, radius, s)

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


# --------------------------------------------------------------------------------------------- belt, camera
def render_belt(
    rng: np.random.Generator,
    shape: tuple[int, int],
    scale: float = 1.0,
    avoid: tuple[float, float, float] | None = None,
) -> Array:
    """A conveyor surface (h, w, 3 float32 0..1): rubber weave, PVC, plastic slats or a steel table.

    Its features run along x (the direction of travel). ``avoid`` (a part's mean BGR colour) keeps the
    belt's brightness at least 0.28 away from it, and its hue away from a painted part's, so the silhouette
    and a chip's bite stay visible.
    """
    h, w = shape
    style = int(rng.integers(4))
    hues = (
        [(0.22, 0.22, 0.2), (0.2, 0.22, 0.22)],
        [(0.3, 0.5, 0.25), (0.55, 0.38, 0.18), (0.8, 0.8, 0.8), (0.3, 0.3, 0.3)],
        [(0.85, 0.85, 0.85), (0.6, 0.45, 0.3), (0.25, 0.25, 0.25)],
        [(0.6, 0.6, 0.58)],
    )[style]
    hue = np.asarray(hues[int(rng.integers(len(hues)))], np.float32)
    tone = rng.uniform(*((0.1, 0.3), (0.18, 0.75), (0.2, 0.8), (0.45, 0.7))[style])
    if avoid is not None:
        avoid_tone = _luma(avoid)
        if abs(tone - avoid_tone) < 0.28:
            step = rng.uniform(0.28, 0.4)
            tone = avoid_tone - step if avoid_tone > 0.45 else avoid_tone + step
        tint, part_tint = hue / _luma(hue), np.asarray(avoid, np.float32) / max(avoid_tone, 1e-3)
        if np.abs(tint - part_tint).sum() < 0.6 and np.ptp(part_tint) > 0.3:  # blue part, blue belt
            hue = np.array([0.5, 0.5, 0.5], np.float32)
    colour = hue * np.clip(tone, 0.06, 0.88) / _luma(hue)
    grain = cv2.GaussianBlur(rng.standard_normal(shape, np.float32), (0, 0), 0.7)
    tex = 1 + rng.uniform(0.02, 0.05) * grain
    tex += rng.uniform(0.02, 0.06) * _noise(rng, shape, 60 * scale)
    xx = np.arange(w, dtype=np.float32)[None, :]
    yy = np.arange(h, dtype=np.float32)[:, None]
    if style == 0:  # rubber: a fine cross weave
        period = rng.uniform(3, 6) * scale
        tex += rng.uniform(0.03, 0.06) * np.sin(2 * np.pi * xx / period) * np.sin(2 * np.pi * yy / period)
    elif style == 1:  # PVC: fibres along the belt
        tex += rng.uniform(0.02, 0.04) * _streaks(rng, shape, int(40 * scale), 0.0)
    elif style == 2:  # modular plastic: slats across the belt, dark gaps between them
        pitch, gap = rng.uniform(30, 50) * scale, max(1.5, 2.5 * scale)
        phase = np.abs(((xx + rng.uniform(0, pitch)) % pitch) - pitch / 2) - (pitch / 2 - gap)
        tex *= 1 - 0.5 * np.clip(phase, 0, 1)
    else:  # steel table: brushed along x
        tex += rng.uniform(0.03, 0.06) * _streaks(rng, shape, int(60 * scale), 0.0)
    belt = colour * tex[..., None]
    n = int(h * w / 2500)
    specks = np.zeros(shape, np.float32)
    for x, y, rad, val in zip(rng.uniform(0, w, n), rng.uniform(0, h, n), rng.uniform(0.5, 1.3, n) * scale,
                              rng.choice([-0.12, 0.15], n), strict=True):  # fmt: skip
        at = (round(x * 16), round(y * 16))
        cv2.circle(specks, at, round(rad * 16), float(val), -1, cv2.LINE_AA, _SHIFT)
    belt += specks[..., None]
    return np.clip(belt, 0, 1)


def lighting_field(rng: np.random.Generator, shape: tuple[int, int]) -> Array:
    """Global gain x a linear gradient x vignetting, (h, w) float32 around 1."""
    h, w = shape
    yy = np.linspace(-1, 1, h, dtype=np.float32)[:, None]
    xx = np.linspace(-1, 1, w, dtype=np.float32)[None, :] * (w / h)
    a = rng.uniform(0, 2 * math.pi)
    ramp = 1 + rng.uniform(0, 0.25) * (xx * math.cos(a) + yy * math.sin(a)) / max(1.0, w / h)
    vignette = 1 - rng.uniform(0, 0.35) * (xx * xx + yy * yy) / (1 + (w / h) ** 2)
    return (rng.uniform(0.75, 1.2) * ramp * vignette).astype(np.float32)


def render_sample(
    rng: np.random.Generator, label: str, part: str, size: int = 256, gray: bool = False
) -> SynthSample:
    """One square image of one part on a belt, with the defect's mask and box (None for a good part)."""
    radius = size * rng.uniform(0.27, 0.36)
    room = min(size / 2 - radius - 3, 0.1 * size)
    cx, cy = size / 2 + rng.uniform(-room, room, 2)
    layer = render_part(rng, label, part, (size, size), (cx, cy), radius, gray, rng.uniform(0, 2 * math.pi))
    belt = render_belt(rng, (size, size), radius / _REF_RADIUS, layer.mean_colour)
    image = (belt * layer.under_gain + layer.over) * lighting_field(rng, (size, size))[..., None]
    if rng.random() < 0.6:  # focus and motion: most cameras are slightly soft
        image = cv2.GaussianBlur(image, (0, 0), rng.uniform(0.3, 0.9))
    image *= 255
    image += rng.standard_normal(image.shape, np.float32) * (255 * rng.uniform(0.004, 0.018)) + 0.5
    pixels = np.clip(image, 0, 255, out=image).astype(np.uint8)
    part_box = mask_box(layer.footprint) or (0, 0, size, size)
    return SynthSample(pixels, layer.mask, layer.footprint, label, part, gray, mask_box(layer.mask), part_box)
