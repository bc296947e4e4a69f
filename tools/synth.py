"""``inspect-model synth``: synthetic inspection data with ground truth, made on this machine.

    inspect-model synth --out data/parts --count 1000 --seed 0          # an image dataset
    inspect-model synth --video --out data/line --duration 20           # a line video

Image mode writes an ImageFolder tree that ``train`` reads as it is::

    DIR/good/000123.png            DIR/<kind>/000124.png          (lossless PNG, BGR)
    DIR/masks/<kind>/000124.png    (defect pixels 255, same size as the image; defects only)
    DIR/manifest.csv               path,label,part,defect,x0,y0,x1,y1,width,height,seed
    DIR/synth.json                 the arguments and the class counts

Boxes are in pixels with x1/y1 exclusive (``mask[y0:y1, x0:x1]``); ``defect`` is 1 for a defect, 0 for good;
``seed`` is the dataset's seed. A new run into DIR first removes the files an earlier run listed there.
Image ``i`` is drawn from ``numpy.random.default_rng([seed, i])`` (its label from a plan shuffled by
``seed``), so a dataset is byte-identical for a seed, and its first N images are a fair sample of it.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from agent import __version__
from agent.status import ExitStatus, InspectError
from tools._cli_util import HelpFormatter, ensure_output_dir
from tools.synth_parts import DEFECT_KINDS, GOOD_LABEL, PART_KINDS, render_sample

__all__ = [
    "DEFECT_KINDS",
    "GOOD_LABEL",
    "MANIFEST_COLUMNS",
    "PART_KINDS",
    "add_parser",
    "choice_problems",
    "class_counts",
    "generate_images",
    "label_plan",
    "run",
]

log = logging.getLogger(__name__)

MANIFEST_COLUMNS = ("path", "label", "part", "defect", "x0", "y0", "x1", "y1", "width", "height", "seed")
_PNG = [cv2.IMWRITE_PNG_COMPRESSION, 1]  # lossless either way; level 1 writes ~5x faster than the default
_PLAN_STREAM = 0x5EED  # a third seed word, so the label plan never shares a stream with an image
_MIN_SIZE = 64  # below this a 1.5 px scratch on a 25 px part is no longer a defect anyone could see


def class_counts(count: int, defect_ratio: float, kinds: Sequence[str]) -> dict[str, int]:
    """Images per label: ``defect_ratio`` of ``count`` split evenly over ``kinds``, the rest good."""
    defects = int(count * defect_ratio + 0.5) if kinds else 0  # half up: 13 at 0.5 gives 7 defects, not 6
    counts = {GOOD_LABEL: count - defects}
    share, extra = divmod(defects, max(1, len(kinds)))
    for i, kind in enumerate(kinds):
        counts[kind] = share + (1 if i < extra else 0)
    return counts


def label_plan(count: int, seed: int, defect_ratio: float, kinds: Sequence[str]) -> list[str]:
    """The label of every image index: the exact class counts, in an order shuffled by ``seed``."""
    labels = [label for label, n in class_counts(count, defect_ratio, kinds).items() for _ in range(n)]
    order = np.random.default_rng([seed, count, _PLAN_STREAM]).permutation(count)
    return [labels[int(i)] for i in order]


def choice_problems(
    defect_ratio: float, kinds: Sequence[str], parts: Sequence[str], gray_ratio: float
) -> list[str]:
    """What is wrong with the options both modes share, one message per problem (empty when all is well)."""
    problems = []
    for name, value in (("--defect-ratio", defect_ratio), ("--gray-ratio", gray_ratio)):
        if not 0.0 <= value <= 1.0:
            problems.append(f"{name} must be in 0..1, got {value}")
    unknown = [k for k in kinds if k not in DEFECT_KINDS] + [p for p in parts if p not in PART_KINDS]
    if unknown:
        problems.append(f"unknown kinds/parts {unknown}: kinds are {DEFECT_KINDS}, parts are {PART_KINDS}")
    if not parts:
        problems.append("--parts must name at least one part kind")
    if defect_ratio > 0 and not kinds:
        problems.append("--kinds is empty but --defect-ratio > 0: name at least one defect kind")
    return problems


def _check(count: int, size: int, defect_ratio: float, kinds: Sequence[str], parts: Sequence[str],
           gray_ratio: float, line_context: float) -> None:  # fmt: skip
    problems = choice_problems(defect_ratio, kinds, parts, gray_ratio)
    if not 0.0 <= line_context <= 1.0:
        problems.append(f"--line-context must be in 0..1, got {line_context}")
    if count < 1:
        problems.append(f"--count must be at least 1, got {count}")
    if size < _MIN_SIZE:
        problems.append(f"--size must be at least {_MIN_SIZE} px, got {size}")
    if problems:
        raise InspectError("; ".join(problems), ExitStatus.USAGE)


def _prepare(out: Path, overwrite: bool) -> None:
    """Create ``out``, clearing an earlier synth run there; refuse to mix with images synth did not write.

    A smaller run over a bigger one must not leave stale images behind for training to pick up, so the
    earlier run's manifest says exactly which files to remove. Anything else is left alone.
    """
    ensure_output_dir(out)
    manifest = out / "manifest.csv"
    if (out / "synth.json").exists() and manifest.exists():
        with manifest.open(newline="") as f:
            earlier = [row["path"] for row in csv.DictReader(f) if row.get("path")]
        for name in earlier:
            (out / name).unlink(missing_ok=True)
            (out / "masks" / name).unlink(missing_ok=True)
        log.info("replaced the earlier synthetic dataset in %s (%d images)", out, len(earlier))
    for name in ("manifest.csv", "synth.json"):
        (out / name).unlink(missing_ok=True)
    foreign = [path for label in (GOOD_LABEL, *DEFECT_KINDS) for path in sorted((out / label).glob("*.png"))]
    if foreign and not overwrite:
        raise InspectError(
            f"{out} already holds images synth did not write ({foreign[0].relative_to(out)} and "
            f"{len(foreign) - 1} more); they would be mixed into the dataset. Choose a new folder, or pass "
            "--overwrite to write beside them",
            ExitStatus.CANT_CREATE,
        )


def _write(path: Path, image: np.ndarray) -> None:
    if not cv2.imwrite(str(path), image, _PNG):
        raise InspectError(f"cannot write {path}", ExitStatus.CANT_CREATE)


def generate_images(
    out: Path,
    count: int,
    seed: int = 0,
    size: int = 256,
    defect_ratio: float = 0.5,
    kinds: Sequence[str] = DEFECT_KINDS,
    parts: Sequence[str] = PART_KINDS,
    gray_ratio: float = 0.3,
    overwrite: bool = False,
    progress: bool = True,
    line_context: float = 0.0,
) -> dict[str, Any]:
    """Write the image dataset to ``out`` and return what ``synth.json`` records.

    ``gray_ratio`` is the share of parts in bare grey metal; the others are painted. ``line_context``
    is the share of images that look like a crop from a running line (neighbours at the sides, JPEG).
    """
    from tqdm import tqdm

    kinds, parts = tuple(kinds), tuple(parts)
    _check(count, size, defect_ratio, kinds, parts, gray_ratio, line_context)
    _prepare(out, overwrite)
    for label in (GOOD_LABEL, *kinds):
        ensure_output_dir(out / label)
        if label != GOOD_LABEL:
            ensure_output_dir(out / "masks" / label)
    plan = label_plan(count, seed, defect_ratio, kinds)
    rows: list[list[object]] = []
    part_counts: Counter[str] = Counter()
    for index, label in enumerate(tqdm(plan, desc="synth", unit="img", disable=None if progress else True)):
        rng = np.random.default_rng([seed, index])
        part = parts[int(rng.integers(len(parts)))]
        gray = bool(rng.random() < gray_ratio)
        sample = render_sample(rng, label, part, size, gray=gray, line_context=line_context)
        name = f"{label}/{index:06d}.png"
        _write(out / name, sample.image)
        if label != GOOD_LABEL:
            _write(out / "masks" / name, sample.mask)
        box: tuple[object, ...] = sample.box or ("", "", "", "")
        rows.append([name, label, part, int(label != GOOD_LABEL), *box, size, size, seed])
        part_counts[part] += 1
    with (out / "manifest.csv").open("w", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(MANIFEST_COLUMNS)
        writer.writerows(rows)
    summary: dict[str, Any] = {
        "generator": f"inspect-model synth {__version__}",
        "args": dict(
            count=count,
            seed=seed,
            size=size,
            defect_ratio=defect_ratio,
            kinds=list(kinds),
            parts=list(parts),
            gray_ratio=gray_ratio,
            line_context=line_context,
        ),
        "classes": class_counts(count, defect_ratio, kinds),
        "parts": {p: part_counts[p] for p in parts},
        "good_label": GOOD_LABEL,
        "box_format": "x0,y0,x1,y1 pixels, x1/y1 exclusive",
    }
    (out / "synth.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def _csv_list(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "synth",
        help="generate a synthetic image dataset or line video with ground truth",
        description=__doc__,
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--seed", type=int, default=0, help="same seed, same bytes")
    parser.add_argument("--defect-ratio", type=float, default=argparse.SUPPRESS,
                        help="share of defective parts (default: 0.5 for images, 0.3 for video)")  # fmt: skip
    parser.add_argument("--kinds", type=_csv_list, default=",".join(DEFECT_KINDS), help="defect kinds")
    parser.add_argument("--parts", type=_csv_list, default=",".join(PART_KINDS), help="part kinds")
    parser.add_argument("--gray-ratio", type=float, default=0.3,
                        help="share of parts in bare grey metal; the rest are painted")  # fmt: skip
    images = parser.add_argument_group("image dataset (default mode)")
    images.add_argument("--count", type=int, default=1000, help="number of images")
    images.add_argument("--size", type=int, default=256, help="image side in pixels")
    images.add_argument(
        "--line-context",
        type=float,
        default=0.5,
        help="share of images that look like the agent's crop of a part on a running line: the edges "
        "of the neighbouring parts at the sides, JPEG-compressed like an MJPEG camera's frame",
    )
    images.add_argument(
        "--overwrite",
        action="store_true",
        help="write even if --out holds other images (an earlier synth run is replaced)",
    )
    video = parser.add_argument_group("line video (--video)")
    video.add_argument("--video", action="store_true", help="write a conveyor video instead of images")
    video.add_argument("--width", type=int, default=1280, help="frame width")
    video.add_argument("--height", type=int, default=720, help="frame height")
    video.add_argument("--fps", type=float, default=30.0, help="frames per second")
    video.add_argument("--duration", type=float, default=20.0, help="seconds of video")
    video.add_argument("--speed", type=float, default=240.0, help="belt speed in pixels per second")
    video.add_argument("--parts-per-minute", type=float, default=60.0, help="mean rate of parts on the belt")
    video.add_argument("--format", choices=("avi", "mp4"), default="avi", help="avi (MJPG) or mp4 (mp4v)")
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    if args.video:
        from tools.synth_video import LineSpec, generate_video

        spec = LineSpec(
            width=args.width, height=args.height, fps=args.fps, duration=args.duration, speed=args.speed,
            parts_per_minute=args.parts_per_minute, defect_ratio=getattr(args, "defect_ratio", 0.3),
            kinds=tuple(args.kinds), parts=tuple(args.parts), gray_ratio=args.gray_ratio, seed=args.seed,
            fmt=args.format,
        )  # fmt: skip
        meta = generate_video(args.out, spec)
        labels = Counter(p["label"] for p in meta["parts"])
        print(f"wrote {args.out / meta['path']}: {meta['frame_count']} frames, {len(meta['parts'])} parts "
              f"({dict(labels)}) in {time.perf_counter() - started:.1f} s")  # fmt: skip
        return int(ExitStatus.OK)
    summary = generate_images(
        args.out, args.count, seed=args.seed, size=args.size, defect_ratio=getattr(args, "defect_ratio", 0.5),
        kinds=args.kinds, parts=args.parts, gray_ratio=args.gray_ratio, overwrite=args.overwrite,
        line_context=args.line_context,
    )  # fmt: skip
    seconds = time.perf_counter() - started
    print(f"wrote {args.count} images to {args.out} ({summary['classes']}) in {seconds:.1f} s")
    return int(ExitStatus.OK)
