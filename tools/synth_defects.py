"""The marks painted onto a synthetic part's surface: the five defects and the benign nuisances.

Each painter draws into a part's ``colour`` (h, w, 3 float32 BGR 0..1) in place and returns the defect's
mask (uint8 0/255); ``dist`` is the distance (px) to the part's nearest edge, ``r`` its radius and ``s`` the
pixel-size scale (1.0 at radius ~85 px). ``chip_bite`` only draws the bite; ``tools.synth_parts`` cuts it out.
Every random draw comes from the ``rng`` passed in.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from tools.synth_belt import _LUMA, _SHIFT, _luma, _noise

__all__ = ["chip_bite", "paint_crack", "paint_hole", "paint_nuisances", "paint_scratch", "paint_spot"]

Array = np.ndarray

# BGR stains: rust, oil, heat tint, yellowed coolant residue
_STAINS = ((0.10, 0.24, 0.46), (0.10, 0.10, 0.11), (0.62, 0.20, 0.42), (0.15, 0.45, 0.55))


# _fixed and _blend are shared with tools.synth_parts (package-internal, hence the underscores).
def _fixed(points: Array) -> Array:
    """Pixel coordinates as the int32 fixed-point numbers cv2 draws with (``_SHIFT`` fractional bits)."""
    return np.round(np.asarray(points, np.float64) * (1 << _SHIFT)).astype(np.int32)


def _blend(colour: Array, alpha: Array, tint: Array | tuple[float, ...] | float) -> None:
    """colour <- colour + alpha * (tint - colour), in place; ``alpha`` is (h, w)."""
    colour += alpha[..., None] * (np.asarray(tint, np.float32) - colour)


def chip_bite(rng: np.random.Generator, fp: Array, r: float) -> Array:
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


def _pick(rng: np.random.Generator, dist: Array, low: float, high: float = math.inf) -> tuple[float, float]:
    """A random pixel whose distance to the part's edge is in [low, high) (the deepest one if none is)."""
    ys, xs = np.nonzero((dist >= low) & (dist < high))
    if ys.size == 0:
        y, x = np.unravel_index(int(np.argmax(dist)), dist.shape)
        return float(x), float(y)
    i = int(rng.integers(ys.size))
    return float(xs[i]), float(ys[i])


def paint_scratch(rng: np.random.Generator, colour: Array, dist: Array, r: float, s: float) -> Array:
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


def paint_crack(
    rng: np.random.Generator, colour: Array, dist: Array, r: float, s: float, light: float
) -> Array:
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


def paint_spot(rng: np.random.Generator, colour: Array, dist: Array, r: float, part_colour: Array) -> Array:
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


def paint_hole(
    rng: np.random.Generator, colour: Array, dist: Array, r: float, s: float, light: float
) -> Array:
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


def paint_nuisances(rng: np.random.Generator, colour: Array, dist: Array, r: float, s: float) -> None:
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
