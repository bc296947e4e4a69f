"""Labelled images from an ImageFolder tree or a manifest CSV, loaded as model-ready pixels.

Images of any size, grey or colour, go through ``agent.preprocess.to_model_pixels``
so training sees exactly what the device will. Unreadable files are skipped and
counted, never fatal; a dataset the job cannot use is.
"""

from __future__ import annotations

import csv
import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from agent.modelcard import InputSpec
from agent.preprocess import to_model_pixels
from agent.status import ExitStatus, InspectError

__all__ = [
    "IGNORED_DIRS",
    "IMAGE_EXTENSIONS",
    "LabelledImages",
    "find_images",
    "load_images",
    "sample_images",
    "stratified_split",
]

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".pgm", ".ppm"})
# Folders that hold masks or ground truth beside the classes (our synth, MVTec-style sets).
IGNORED_DIRS = frozenset({"masks", "ground_truth", "gt"})


@dataclass
class LabelledImages:
    """Pixels (N, H, W, C) uint8 in the model's colour order, with integer labels into ``class_names``."""

    pixels: np.ndarray
    labels: np.ndarray
    class_names: list[str]
    paths: list[str]
    skipped: dict[str, list[str]] = field(default_factory=dict)
    # Defect masks (N, H, W) uint8 at model resolution, zeros for good parts, and whether each
    # image's mask is known (a defect image without a mask file is not).
    masks: np.ndarray | None = None
    mask_known: np.ndarray | None = None
    kinds: list[str] | None = None  # the original folder per image, when labels were merged (anomaly)

    def __len__(self) -> int:
        return len(self.paths)

    def counts(self) -> dict[str, int]:
        counter = Counter(int(i) for i in self.labels)
        return {name: counter.get(i, 0) for i, name in enumerate(self.class_names)}

    def subset(self, index: np.ndarray) -> LabelledImages:
        return LabelledImages(
            self.pixels[index],
            self.labels[index],
            self.class_names,
            [self.paths[i] for i in index],
            self.skipped,
            None if self.masks is None else self.masks[index],
            None if self.mask_known is None else self.mask_known[index],
            None if self.kinds is None else [self.kinds[i] for i in index],
        )

    def summary(self) -> dict[str, object]:
        summary: dict[str, object] = {
            "images": len(self),
            "classes": self.counts(),
            "skipped": {reason: len(paths) for reason, paths in self.skipped.items()},
        }
        if self.masks is not None and self.mask_known is not None:
            non_empty = self.masks.reshape(len(self), -1).max(axis=1) > 0
            summary["defect_masks"] = int(np.sum(self.mask_known & non_empty))
        return summary


def _read_image(path: Path) -> np.ndarray | None:
    """An 8-bit image as OpenCV reads it (BGR, grey or BGRA), or None when unreadable."""
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if image is None or image.size == 0:
        return None
    if image.dtype != np.uint8:  # 16-bit industrial TIFFs: scale to 8 bit
        image = cv2.convertScaleAbs(image, alpha=255.0 / max(1, int(image.max())))
    return image


def _scan_folder(root: Path) -> tuple[list[tuple[Path, str]], list[str]]:
    items: list[tuple[Path, str]] = []
    non_images: list[str] = []
    class_dirs = sorted(
        p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".") and p.name not in IGNORED_DIRS
    )
    for class_dir in class_dirs:
        for path in sorted(class_dir.rglob("*")):
            if not path.is_file() or path.name.startswith("."):
                continue
            if path.suffix.lower() in IMAGE_EXTENSIONS:
                items.append((path, class_dir.name))
            else:
                non_images.append(str(path))
    return items, non_images


def _scan_manifest(manifest: Path) -> tuple[list[tuple[Path, str]], list[str]]:
    with manifest.open(newline="") as handle:
        reader = csv.DictReader(handle)
        if not reader.fieldnames or not {"path", "label"} <= set(reader.fieldnames):
            raise InspectError(
                f"manifest {manifest} needs columns 'path' and 'label', has {reader.fieldnames}",
                ExitStatus.DATA_ERROR,
            )
        items = [(manifest.parent / row["path"], row["label"]) for row in reader]
    non_images = [str(p) for p, _ in items if p.suffix.lower() not in IMAGE_EXTENSIONS]
    return [(p, label) for p, label in items if p.suffix.lower() in IMAGE_EXTENSIONS], non_images


def find_images(source: Path) -> tuple[list[tuple[Path, str]], list[str]]:
    """(path, label) pairs from an ImageFolder tree or manifest CSV, plus files skipped as non-images."""
    if source.is_file() and source.suffix.lower() == ".csv":
        return _scan_manifest(source)
    if not source.is_dir():
        raise InspectError(f"data {source} is neither a folder nor a manifest .csv", ExitStatus.NO_INPUT)
    return _scan_folder(source)


def _mask_path(source: Path, path: Path, label: str) -> Path | None:
    """Where a defect image's mask lives: our synth layout or an MVTec-style ground_truth folder.

    Looked for beside the image's own dataset first (``ROOT/<label>/name``), then beside the data source:
    a manifest that combines several synth folders (whose file names repeat) keeps each folder's masks.
    """
    roots = [path.parent.parent, source if source.is_dir() else source.parent]
    for root in dict.fromkeys(roots):
        for candidate in (
            root / "masks" / label / path.name,
            root / "masks" / label / f"{path.stem}.png",
            root / "ground_truth" / label / f"{path.stem}_mask.png",
            root / "ground_truth" / label / f"{path.stem}.png",
        ):
            if candidate.is_file():
                return candidate
    return None


def _load_mask(path: Path | None, shape: tuple[int, ...], spec: InputSpec) -> np.ndarray | None:
    if path is None:
        return None
    mask = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if mask is None:
        log.warning("unreadable mask %s: its image counts as a defect without a known mask", path)
        return None
    if mask.shape[:2] != shape[:2]:
        raise InspectError(
            f"mask {path} is {mask.shape[1]}x{mask.shape[0]} px, its image is {shape[1]}x{shape[0]}: "
            "a mask must have its image's size",
            ExitStatus.DATA_ERROR,
        )
    grey = spec.model_copy(update={"color_order": "GRAY", "shape": [1, spec.height, spec.width, 1]})
    return to_model_pixels(mask, grey)[0][:, :, 0]


def load_images(
    source: Path,
    spec: InputSpec,
    class_names: list[str] | None = None,
    limit_per_class: int | None = None,
    good_label: str | None = None,
) -> LabelledImages:
    """Load every readable image under ``source``; ``class_names`` fixes the label order (a model's).

    With ``good_label``, defect masks come too (``masks/<label>/<name>`` as synth writes them,
    or MVTec's ``ground_truth/<label>/<stem>_mask.png``); good images get empty masks.
    """
    items, non_images = find_images(source)
    if non_images:
        log.warning("skipped %d non-image file(s) in %s, e.g. %s", len(non_images), source, non_images[0])
    if not items:
        raise InspectError(
            f"no images found in {source} (expected class sub-folders such as good/ and scratch/ "
            f"holding {', '.join(sorted(IMAGE_EXTENSIONS))} files, or a manifest .csv)",
            ExitStatus.DATA_ERROR,
        )
    names = class_names or sorted({label for _, label in items})
    unknown = sorted({label for _, label in items} - set(names))
    if unknown:
        raise InspectError(
            f"data in {source} has classes {unknown} that the model does not know (model labels: {names})",
            ExitStatus.DATA_ERROR,
        )
    if limit_per_class is not None:
        kept: Counter[str] = Counter()
        limited = []
        for path, label in items:
            if kept[label] < limit_per_class:
                kept[label] += 1
                limited.append((path, label))
        items = limited
    index = {name: i for i, name in enumerate(names)}
    pixels, labels, paths, corrupt = [], [], [], []
    masks: list[np.ndarray] = []
    known: list[bool] = []
    for path, label in items:
        image = _read_image(path)
        if image is None:
            corrupt.append(str(path))
            continue
        pixels.append(to_model_pixels(image, spec)[0])
        labels.append(index[label])
        paths.append(str(path))
        if good_label is not None:
            empty = np.zeros((spec.height, spec.width), np.uint8)
            found = None if label == good_label else _mask_path(source, path, label)
            mask = empty if label == good_label else _load_mask(found, image.shape, spec)
            masks.append(empty if mask is None else mask)
            known.append(mask is not None)
    if corrupt:
        log.warning("skipped %d unreadable image(s) in %s, e.g. %s", len(corrupt), source, corrupt[0])
    if not pixels:
        raise InspectError(
            f"none of the {len(items)} image file(s) in {source} could be read", ExitStatus.DATA_ERROR
        )
    skipped = {"unreadable": corrupt, "not_an_image": non_images}
    return LabelledImages(
        np.stack(pixels),
        np.asarray(labels, dtype=np.int64),
        names,
        paths,
        skipped,
        np.stack(masks) if masks else None,
        np.asarray(known, dtype=bool) if known else None,
    )


def stratified_split(labels: np.ndarray, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Train/validation indices keeping class proportions; every class gets at least one validation image.

    Per class rather than scikit-learn's global rounding, which can leave a rare
    defect class (the one that matters) out of validation entirely.
    """
    counts = Counter(int(i) for i in labels)
    too_small = sorted(i for i, n in counts.items() if n < 2)
    if too_small:
        raise InspectError(
            f"classes with index {too_small} have fewer than 2 images: cannot hold one out for validation",
            ExitStatus.DATA_ERROR,
        )
    rng = np.random.default_rng(seed)
    val: list[np.ndarray] = []
    for label, count in sorted(counts.items()):
        members = rng.permutation(np.flatnonzero(labels == label))
        n_val = min(count - 1, max(1, round(count * val_fraction)))
        val.append(members[:n_val])
    val_idx = np.sort(np.concatenate(val))
    train_idx = np.setdiff1d(np.arange(len(labels)), val_idx)
    return train_idx, val_idx


def sample_images(source: Path, spec: InputSpec, count: int, seed: int) -> np.ndarray:
    """Up to ``count`` readable images from anywhere under ``source`` (labels ignored), seeded.

    For calibration and conversion checks, where a flat folder of images is as good as a labelled tree.
    """
    if not source.is_dir():
        raise InspectError(f"representative data {source} is not a folder", ExitStatus.NO_INPUT)
    paths = sorted(
        p
        for p in source.rglob("*")
        if p.is_file()
        and p.suffix.lower() in IMAGE_EXTENSIONS
        and not IGNORED_DIRS.intersection(p.relative_to(source).parts[:-1])
    )
    if not paths:
        raise InspectError(
            f"no images found in representative folder {source} ({', '.join(sorted(IMAGE_EXTENSIONS))})",
            ExitStatus.DATA_ERROR,
        )
    order = np.random.default_rng(seed).permutation(len(paths))
    pixels: list[np.ndarray] = []
    unreadable = 0
    for i in order:
        image = _read_image(paths[i])
        if image is None:
            unreadable += 1
            continue
        pixels.append(to_model_pixels(image, spec)[0])
        if len(pixels) == count:
            break
    if unreadable:
        log.warning("skipped %d unreadable image(s) in %s", unreadable, source)
    if not pixels:
        raise InspectError(f"none of the images in {source} could be read", ExitStatus.DATA_ERROR)
    return np.stack(pixels)
