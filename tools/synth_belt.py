"""The scene around a synthetic part: the conveyor belt under it and the lighting over it.

Also holds the low-level pieces every synthetic-image module shares: the fixed-point shift cv2 draws
with, luma weights, and the smooth-noise and streak textures (belt, brushed metal, stains).
Every random draw comes from the ``rng`` passed in, as in ``tools.synth_parts``.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

__all__ = ["lighting_field", "render_belt"]

Array = np.ndarray

# Shared with tools.synth_defects and tools.synth_parts (package-internal, hence the underscores).
_SHIFT = 4  # cv2 draws with 4 fractional bits, so small parts stay round and lines sub-pixel accurate
_LUMA = np.array([0.114, 0.587, 0.299], np.float32)  # BGR weights


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


def _luma(colour: Array | tuple[float, ...]) -> float:
    """The brightness of a BGR colour."""
    return float(np.asarray(colour, np.float32) @ _LUMA)


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
