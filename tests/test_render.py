"""Render: padded crops, size-capped JPEGs that decode back, annotation on a copy."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from agent.render import annotate, crop_padded, encode_jpeg
from agent.trigger import Box


def _ramp(height: int = 60, width: int = 80) -> np.ndarray:
    """Every pixel distinct enough to check which one landed where: B = x, G = y, R = 7."""
    ys, xs = np.mgrid[0:height, 0:width]
    return np.stack([xs, ys, np.full_like(xs, 7)], axis=2).astype(np.uint8)


@pytest.mark.parametrize(
    ("box", "shape"),
    [
        ((10, 5, 20, 30), (30, 20, 3)),  # inside: a plain slice
        ((0, 0, 80, 60), (60, 80, 3)),  # the whole frame
        ((-5, 10, 20, 20), (20, 20, 3)),  # past the left edge
        ((70, 50, 20, 20), (20, 20, 3)),  # past the right and bottom edges
        ((-10, -10, 100, 80), (80, 100, 3)),  # larger than the frame on every side
        ((-50, 10, 20, 20), (20, 20, 3)),  # wholly left of the frame
        ((100, 70, 20, 20), (20, 20, 3)),  # wholly right of and below it
    ],
)
def test_crop_padded_shape(box: Box, shape: tuple[int, int, int]) -> None:
    assert crop_padded(_ramp(), box).shape == shape


def test_crop_padded_inside_is_the_slice() -> None:
    image = _ramp()
    np.testing.assert_array_equal(crop_padded(image, (10, 5, 20, 30)), image[5:35, 10:30])


def test_crop_padded_replicates_the_border() -> None:
    image = _ramp()
    crop = crop_padded(image, (-5, -3, 20, 10))
    np.testing.assert_array_equal(crop[3:, 5:], image[0:7, 0:15])  # the part inside the frame
    np.testing.assert_array_equal(crop[3:, 0], image[0:7, 0])  # left padding copies column 0
    np.testing.assert_array_equal(crop[0, 5:], image[0, 0:15])  # top padding copies row 0
    assert crop[0, 0].tolist() == image[0, 0].tolist()  # the corner copies the corner
    right = crop_padded(image, (75, 50, 10, 5))
    np.testing.assert_array_equal(right[:, 5:], np.repeat(image[50:55, 79:80], 5, axis=1))
    outside = crop_padded(image, (-50, 10, 20, 4))  # all of it copies column 0
    np.testing.assert_array_equal(outside, np.repeat(image[10:14, 0:1], 20, axis=1))


def test_crop_padded_grey() -> None:
    grey = _ramp()[..., 0].copy()
    assert crop_padded(grey, (-2, -2, 6, 6)).shape == (6, 6)


@pytest.mark.parametrize(
    ("shape", "max_side", "size"),
    [
        ((720, 1280, 3), 640, (640, 360)),  # landscape: width capped
        ((1280, 720, 3), 640, (360, 640)),  # portrait: height capped
        ((300, 400, 3), 640, (400, 300)),  # already small: never upscaled
        ((480, 640), 320, (320, 240)),  # grey
        ((100, 333, 3), 100, (100, 30)),  # rounding: 100 * 100/333 = 30.03
    ],
)
def test_encode_jpeg_caps_the_longer_side(
    shape: tuple[int, ...], max_side: int, size: tuple[int, int]
) -> None:
    rng = np.random.default_rng(0)
    jpeg = encode_jpeg(rng.integers(0, 256, shape, dtype=np.uint8), max_side, 80)
    assert (jpeg.width, jpeg.height) == size
    decoded = cv2.imdecode(np.frombuffer(jpeg.data, np.uint8), cv2.IMREAD_UNCHANGED)
    assert decoded is not None and (decoded.shape[1], decoded.shape[0]) == size
    assert jpeg.data[:2] == b"\xff\xd8"


def test_encode_jpeg_quality_changes_size() -> None:
    image = np.random.default_rng(1).integers(0, 256, (200, 200, 3), dtype=np.uint8)
    assert len(encode_jpeg(image, 200, 30).data) < len(encode_jpeg(image, 200, 95).data)


@pytest.mark.parametrize(
    ("image", "ng"),
    [
        (np.full((360, 640, 3), 90, np.uint8), True),  # colour, NG
        (np.full((360, 640, 3), 90, np.uint8), False),  # colour, OK
        (np.full((360, 640), 90, np.uint8), True),  # grey camera: the drawing is in colour
    ],
)
def test_annotate_draws_on_a_copy(image: np.ndarray, ng: bool) -> None:
    before = image.copy()
    out = annotate(image, ng, "NG scratch 0.93", roi=(10, 20, 600, 300), box=(200, 100, 120, 120))
    np.testing.assert_array_equal(image, before)  # input untouched
    assert out.shape == (360, 640, 3) and out.dtype == np.uint8
    assert out is not image
    assert not np.array_equal(out[..., 0], out[..., 2])  # something coloured was drawn
    banner = tuple(int(v) for v in out[2, 2])
    assert banner == ((40, 40, 230) if ng else (60, 180, 60))  # the banner's colour tells NG from OK
    box_edge = tuple(int(v) for v in out[160, 200])  # left edge of the part box, away from the text
    assert box_edge == banner


def test_annotate_regions_and_no_boxes() -> None:
    image = np.full((100, 200, 3), 90, np.uint8)
    plain = annotate(image, False, "OK", roi=None, box=None)
    with_region = annotate(image, False, "OK", roi=None, box=None, regions=[(120, 60, 30, 20)])
    assert (plain[60:80, 120:150] == 90).all()
    assert not (with_region[60:80, 120:150] == 90).all()


def test_region_texts_are_written_above_their_regions() -> None:
    image = np.full((360, 640, 3), 90, np.uint8)
    boxes = annotate(image, True, "NG", roi=None, box=None, regions=[(300, 200, 40, 30)])
    named = annotate(image, True, "NG", roi=None, box=None, regions=[(300, 200, 40, 30)],
                     region_texts=["scratch 0.91"])  # fmt: skip
    above = np.s_[185:199, 300:380]  # the strip just above the box, right of its left edge
    assert (boxes[above] == 90).all()
    assert not (named[above] == 90).all()
    assert (named[200:230, 302:338] == boxes[200:230, 302:338]).all()  # the box itself is unchanged
