"""Loading labelled images: folders or manifests, junk skipped and counted, splits that keep every class."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from agent.modelcard import InputSpec
from agent.status import ExitStatus, InspectError
from tools.dataset import load_images, sample_images, stratified_split

SPEC = InputSpec(name="image", shape=[1, 32, 32, 3], dtype="float32")


def _write(path: Path, image: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), image)
    return path


def test_folder_tree_with_masks_junk_and_odd_images(tmp_path: Path) -> None:
    _write(tmp_path / "good" / "a.png", np.zeros((50, 80, 3), np.uint8))
    _write(tmp_path / "good" / "nested" / "b.jpg", np.zeros((20, 20), np.uint8))  # grey, in a sub-folder
    _write(tmp_path / "scratch" / "c.tif", np.full((40, 40), 60000, np.uint16))  # 16-bit industrial TIFF
    _write(tmp_path / "masks" / "scratch" / "c.png", np.zeros((40, 40), np.uint8))  # not a class
    (tmp_path / "scratch" / "broken.png").write_bytes(b"\x89PNG truncated")
    (tmp_path / "scratch" / "notes.txt").write_text("x")
    data = load_images(tmp_path, SPEC)
    assert data.class_names == ["good", "scratch"]
    assert data.counts() == {"good": 2, "scratch": 1}
    assert data.pixels.shape == (3, 32, 32, 3) and data.pixels.dtype == np.uint8
    assert data.pixels[2].min() == 255  # 16-bit scaled to the full 8-bit range
    assert data.summary()["skipped"] == {"unreadable": 1, "not_an_image": 1}


def test_manifest_csv(tmp_path: Path) -> None:
    _write(tmp_path / "img" / "1.png", np.zeros((10, 10, 3), np.uint8))
    _write(tmp_path / "img" / "2.png", np.full((10, 10, 3), 200, np.uint8))
    (tmp_path / "m.csv").write_text("path,label,extra\nimg/1.png,good,x\nimg/2.png,chip,y\n")
    data = load_images(tmp_path / "m.csv", SPEC)
    assert data.class_names == ["chip", "good"] and data.labels.tolist() == [1, 0]


def test_manifest_without_label_column(tmp_path: Path) -> None:
    (tmp_path / "m.csv").write_text("file,class\n")
    with pytest.raises(InspectError, match="needs columns 'path' and 'label'") as info:
        load_images(tmp_path / "m.csv", SPEC)
    assert info.value.status == ExitStatus.DATA_ERROR


def test_classes_unknown_to_the_model(tmp_path: Path) -> None:
    _write(tmp_path / "dent" / "a.png", np.zeros((10, 10, 3), np.uint8))
    with pytest.raises(InspectError, match=r"classes \['dent'\] that the model does not know"):
        load_images(tmp_path, SPEC, class_names=["good", "scratch"])


@pytest.mark.parametrize(
    ("labels", "fraction", "val_counts"),
    [
        ([0] * 90 + [1] * 10, 0.2, {0: 18, 1: 2}),  # proportions kept
        ([0] * 50 + [1] * 2, 0.1, {0: 5, 1: 1}),  # a rare class still gets one validation image
    ],
)
def test_stratified_split(labels: list[int], fraction: float, val_counts: dict[int, int]) -> None:
    y = np.array(labels)
    train, val = stratified_split(y, fraction, seed=0)
    assert not set(train) & set(val) and len(train) + len(val) == len(y)
    assert {k: int(np.sum(y[val] == k)) for k in val_counts} == val_counts


def test_split_needs_two_images_per_class() -> None:
    with pytest.raises(InspectError, match="fewer than 2 images"):
        stratified_split(np.array([0, 0, 0, 1]), 0.2, seed=0)


def test_sample_images_is_seeded_and_flat_folders_work(tmp_path: Path) -> None:
    for i in range(10):
        _write(tmp_path / f"{i}.png", np.full((8, 8, 3), i * 20, np.uint8))
    first = sample_images(tmp_path, SPEC, count=4, seed=1)
    assert first.shape == (4, 32, 32, 3)
    np.testing.assert_array_equal(first, sample_images(tmp_path, SPEC, count=4, seed=1))
    assert not np.array_equal(first, sample_images(tmp_path, SPEC, count=4, seed=2))


def test_defect_masks_from_synth_and_mvtec_layouts(tmp_path: Path) -> None:
    square = np.zeros((64, 64), np.uint8)
    square[16:48, 16:48] = 255
    _write(tmp_path / "good" / "g.png", np.zeros((64, 64, 3), np.uint8))
    _write(tmp_path / "scratch" / "s.png", np.zeros((64, 64, 3), np.uint8))
    _write(tmp_path / "masks" / "scratch" / "s.png", square)  # our synth layout
    _write(tmp_path / "crack" / "c.png", np.zeros((64, 64, 3), np.uint8))
    _write(tmp_path / "ground_truth" / "crack" / "c_mask.png", square)  # MVTec layout
    _write(tmp_path / "crack" / "nomask.png", np.zeros((64, 64, 3), np.uint8))  # mask unknown
    data = load_images(tmp_path, SPEC, good_label="good")
    assert data.masks is not None and data.mask_known is not None
    by_name = {Path(p).name: i for i, p in enumerate(data.paths)}
    assert data.masks.shape == (4, 32, 32)
    assert data.masks[by_name["s.png"]][16, 16] == 255 and data.masks[by_name["s.png"]][2, 2] == 0
    assert data.masks[by_name["c.png"]].max() == 255
    assert data.masks[by_name["g.png"]].max() == 0 and data.mask_known[by_name["g.png"]]
    assert not data.mask_known[by_name["nomask.png"]]
    assert data.summary()["defect_masks"] == 2
    assert data.subset(np.array([by_name["s.png"]])).masks.shape == (1, 32, 32)  # type: ignore[union-attr]


def test_manifest_combining_two_synth_folders_keeps_each_folders_masks(tmp_path: Path) -> None:
    # Both folders number their files from 0, and the manifest sits in one of them: each image must get
    # its own folder's mask, not the same-named one beside the manifest.
    for folder, (y0, x0) in (("base", (0, 0)), ("extra", (32, 32))):
        mask = np.zeros((64, 64), np.uint8)
        mask[y0 : y0 + 32, x0 : x0 + 32] = 255
        _write(tmp_path / folder / "chip" / "0.png", np.zeros((64, 64, 3), np.uint8))
        _write(tmp_path / folder / "masks" / "chip" / "0.png", mask)
    _write(tmp_path / "base" / "good" / "1.png", np.zeros((64, 64, 3), np.uint8))
    (tmp_path / "base" / "all.csv").write_text(
        "path,label\ngood/1.png,good\nchip/0.png,chip\n../extra/chip/0.png,chip\n"
    )
    data = load_images(tmp_path / "base" / "all.csv", SPEC, good_label="good")
    assert data.masks is not None and data.mask_known is not None and data.mask_known.all()
    assert data.summary()["defect_masks"] == 2
    assert data.masks[1][4, 4] == 255 and data.masks[1][28, 28] == 0  # base's mask: top left
    assert data.masks[2][28, 28] == 255 and data.masks[2][4, 4] == 0  # extra's mask: bottom right
