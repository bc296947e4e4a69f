"""Preprocessing: geometry maps back to the frame, colour order, and quantization fast paths agree."""

from __future__ import annotations

import numpy as np
import pytest

from agent.modelcard import InputSpec, QuantParams
from agent.preprocess import quantize, to_input_tensor, to_model_pixels


def _spec(**changes: object) -> InputSpec:
    fields: dict[str, object] = {"name": "image", "shape": [1, 64, 64, 3], "dtype": "float32"}
    fields.update(changes)
    return InputSpec.model_validate(fields)


def test_stretch_resizes_and_maps_points_back() -> None:
    frame = np.zeros((120, 200, 3), np.uint8)
    pixels, transform = to_model_pixels(frame, _spec())
    assert pixels.shape == (64, 64, 3)
    assert transform.to_source(64, 64) == pytest.approx((200, 120))


def test_letterbox_keeps_aspect_and_pads() -> None:
    frame = np.full((100, 200, 3), 255, np.uint8)
    pixels, transform = to_model_pixels(frame, _spec(resize="letterbox"))
    assert pixels.shape == (64, 64, 3)
    assert pixels[0, 0].tolist() == [0, 0, 0]  # padding above the image
    assert pixels[32, 32].tolist() == [255, 255, 255]
    assert transform.to_source(0, 16) == pytest.approx((0, 0))  # content starts 16 rows down
    assert transform.to_source(64, 48) == pytest.approx((200, 100))


@pytest.mark.parametrize(
    ("image", "order", "expected"),
    [
        (np.array([[[10, 20, 30]]], np.uint8), "RGB", [30, 20, 10]),  # OpenCV BGR -> RGB
        (np.array([[[10, 20, 30]]], np.uint8), "BGR", [10, 20, 30]),  # unchanged
        (np.array([[7]], np.uint8), "RGB", [7, 7, 7]),  # grey camera into a colour model
        (np.array([[[10, 20, 30, 255]]], np.uint8), "RGB", [30, 20, 10]),  # BGRA drops alpha
    ],
)
def test_colour_order(image: np.ndarray, order: str, expected: list[int]) -> None:
    pixels, _ = to_model_pixels(image, _spec(shape=[1, 1, 1, 3], color_order=order))
    assert pixels[0, 0].tolist() == expected


def test_grey_model_gets_one_channel() -> None:
    pixels, _ = to_model_pixels(
        np.zeros((10, 10, 3), np.uint8), _spec(shape=[1, 8, 8, 1], color_order="GRAY")
    )
    assert pixels.shape == (8, 8, 1)


@pytest.mark.parametrize(
    ("dtype", "zero_point"),
    [("uint8", 0), ("int8", -128)],  # the identity-scale fast paths our int8 models take
)
def test_quantized_fast_path_matches_general_formula(dtype: str, zero_point: int) -> None:
    pixels = np.arange(256, dtype=np.uint8).reshape(16, 16, 1).repeat(3, axis=2)
    spec = _spec(
        shape=[1, 16, 16, 3], dtype=dtype, quantization=QuantParams(scale=1.0, zero_point=zero_point)
    )
    tensor = to_input_tensor(pixels, spec)
    assert tensor.dtype == np.dtype(dtype) and tensor.shape == (1, 16, 16, 3)
    np.testing.assert_array_equal(tensor[0], quantize(pixels.astype(np.float32), 1.0, zero_point, dtype))


def test_general_quantization_with_mean_std_and_clipping() -> None:
    pixels = np.array([[[0, 128, 255]]], np.uint8)
    spec = _spec(
        shape=[1, 1, 1, 3],
        dtype="int8",
        mean=[127.5],
        std=[127.5],
        quantization=QuantParams(scale=1 / 127.5, zero_point=0),
    )
    np.testing.assert_array_equal(to_input_tensor(pixels, spec)[0, 0, 0], [-127, 1, 127])


def test_float_input_is_normalised() -> None:
    spec = _spec(shape=[1, 1, 1, 3], mean=[100.0, 0.0, 0.0], std=[2.0, 1.0, 1.0])
    tensor = to_input_tensor(np.array([[[110, 5, 6]]], np.uint8), spec)
    assert tensor.dtype == np.float32
    np.testing.assert_allclose(tensor[0, 0, 0], [5.0, 5.0, 6.0])


def test_quantized_input_without_params_is_refused() -> None:
    with pytest.raises(ValueError, match="needs quantization params"):
        to_input_tensor(np.zeros((64, 64, 3), np.uint8), _spec(dtype="uint8"))
