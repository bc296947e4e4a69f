"""Frame -> input tensor, exactly as the model card says.

The same functions prepare training images on the workstation and camera frames
on the device, so the two cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from agent.modelcard import InputSpec

__all__ = ["Transform", "preprocess", "quantize", "to_input_tensor", "to_model_pixels"]

_INT_RANGES = {"uint8": (0, 255), "int8": (-128, 127)}


@dataclass(frozen=True)
class Transform:
    """Maps a point in model-input pixels back to source-frame pixels: src = (p - offset) / scale."""

    scale_x: float
    scale_y: float
    offset_x: float = 0.0
    offset_y: float = 0.0

    def to_source(self, x: float, y: float) -> tuple[float, float]:
        return (x - self.offset_x) / self.scale_x, (y - self.offset_y) / self.scale_y


def _convert_colour(image: np.ndarray, color_order: str) -> np.ndarray:
    """OpenCV gives BGR (or grey, or BGRA); return the model's colour order."""
    if image.ndim == 2 or image.shape[2] == 1:
        grey = image.reshape(image.shape[0], image.shape[1])
        if color_order == "GRAY":
            return grey
        return cv2.cvtColor(grey, cv2.COLOR_GRAY2RGB)  # RGB == BGR for grey
    if image.shape[2] == 4:
        image = cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    if color_order == "RGB":
        return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    if color_order == "GRAY":
        return cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    return image


def to_model_pixels(image: np.ndarray, spec: InputSpec) -> tuple[np.ndarray, Transform]:
    """Resize and colour-convert a BGR/grey uint8 image to (H, W, C) uint8 pixels for the model."""
    if image.dtype != np.uint8:
        raise ValueError(f"image must be uint8, got {image.dtype}")
    src_h, src_w = image.shape[:2]
    height, width = spec.height, spec.width
    # Shrink with INTER_AREA (no aliasing of fine scratches), enlarge with INTER_LINEAR.
    if spec.resize == "stretch":
        interp = cv2.INTER_AREA if src_w > width or src_h > height else cv2.INTER_LINEAR
        resized = cv2.resize(image, (width, height), interpolation=interp)
        transform = Transform(width / src_w, height / src_h)
    else:
        scale = min(width / src_w, height / src_h)
        new_w, new_h = max(1, round(src_w * scale)), max(1, round(src_h * scale))
        interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
        inner = cv2.resize(image, (new_w, new_h), interpolation=interp)
        pad_x, pad_y = (width - new_w) // 2, (height - new_h) // 2
        channels = () if inner.ndim == 2 else (inner.shape[2],)
        resized = np.zeros((height, width, *channels), dtype=np.uint8)
        resized[pad_y : pad_y + new_h, pad_x : pad_x + new_w] = inner
        transform = Transform(scale, scale, pad_x, pad_y)
    pixels = _convert_colour(resized, spec.color_order)
    if pixels.ndim == 2:
        pixels = pixels[:, :, None]
    return pixels, transform


def quantize(values: np.ndarray, scale: float, zero_point: int, dtype: str) -> np.ndarray:
    """real -> q = round(real / scale) + zero_point, rounding halves away from zero as TFLite does."""
    low, high = _INT_RANGES[dtype]
    scaled = values / scale
    rounded = np.sign(scaled) * np.floor(np.abs(scaled) + 0.5)
    return np.clip(rounded + zero_point, low, high).astype(dtype)


def to_input_tensor(pixels: np.ndarray, spec: InputSpec) -> np.ndarray:
    """(H, W, C) uint8 pixels -> (1, H, W, C) tensor in the model's dtype."""
    identity_norm = spec.mean == [0.0] and spec.std == [1.0]
    q = spec.quantization
    if spec.dtype in _INT_RANGES:
        if q is None:
            raise ValueError(f"input dtype {spec.dtype} needs quantization params in the model card")
        # Our int8 models take pixels almost unchanged: skip the float round trip when exact.
        if identity_norm and abs(q.scale - 1.0) < 1e-6:
            if spec.dtype == "uint8" and q.zero_point == 0:
                return pixels[None]
            if spec.dtype == "int8" and q.zero_point == -128:
                return (pixels ^ np.uint8(0x80)).view(np.int8)[None]
        values = _normalise(pixels, spec, identity_norm)
        return quantize(values, q.scale, q.zero_point, spec.dtype)[None]
    return _normalise(pixels, spec, identity_norm).astype(spec.dtype, copy=False)[None]


def _normalise(pixels: np.ndarray, spec: InputSpec, identity: bool) -> np.ndarray:
    values = pixels.astype(np.float32)
    if identity:
        return values
    mean = np.asarray(spec.mean, dtype=np.float32)
    std = np.asarray(spec.std, dtype=np.float32)
    return (values - mean) / std


def preprocess(image: np.ndarray, spec: InputSpec) -> tuple[np.ndarray, Transform]:
    pixels, transform = to_model_pixels(image, spec)
    return to_input_tensor(pixels, spec), transform
