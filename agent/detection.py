"""SSD-style detector outputs -> a list of :class:`Detection` in the pixels of the image given to the model.

The contract is the one of TFLite_Detection_PostProcess, which pycoral, Frigate and most exported
detectors share: four outputs, ``boxes`` [1, N, 4] as normalised ``ymin, xmin, ymax, xmax``,
``classes`` [1, N] (class ids as floats), ``scores`` [1, N] and ``count`` [1]. Which tensor is which
is not the same in every export (TF1 and TF2 order them differently), so :func:`find_output_roles`
settles it once by signature key, tensor name or shape, and the model card records the tensor names;
at run time outputs are read by name, never by index.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from agent.messages import Region
from agent.modelcard import DetectionOutputs, DetectionSpec, TensorSpec
from agent.preprocess import Transform
from agent.status import ExitStatus, InspectError

__all__ = [
    "ROLES",
    "Detection",
    "DetectionHead",
    "find_output_roles",
    "label_scores",
    "labels_from_file",
    "read_label_file",
    "regions_in_frame",
]

ROLES = ("boxes", "classes", "scores", "count")
_EXPECTED = "boxes [1, N, 4], classes [1, N], scores [1, N], count [1]"
# TF1 exports name the post-process op's outputs after it: boxes, classes, scores, count.
_TF1_NAMES = ("TFLite_Detection_PostProcess", "TFLite_Detection_PostProcess:1",
              "TFLite_Detection_PostProcess:2", "TFLite_Detection_PostProcess:3")  # fmt: skip
# TF2 exports (Object Detection API, Model Maker) key their signature output_0..3 as pycoral reads them.
_TF2_KEYS = {"output_0": "count", "output_1": "scores", "output_2": "classes", "output_3": "boxes"}
_WORDS = (("boxes", ("box",)), ("classes", ("class", "label")), ("scores", ("score",)),
          ("count", ("count", "num_detections", "num")))  # fmt: skip


@dataclass(frozen=True)
class Detection:
    """One detected object; ``box`` is (x0, y0, x1, y1) in pixels of the image the model was given."""

    label: str
    class_id: int
    score: float
    box: tuple[float, float, float, float]

    def rect(self, offset_x: int = 0, offset_y: int = 0) -> tuple[int, int, int, int]:
        """``[x, y, w, h]`` in whole pixels, shifted by an offset (the crop's place in the frame)."""
        x0, y0 = int(np.floor(self.box[0])) + offset_x, int(np.floor(self.box[1])) + offset_y
        x1, y1 = int(np.ceil(self.box[2])) + offset_x, int(np.ceil(self.box[3])) + offset_y
        return x0, y0, max(1, x1 - x0), max(1, y1 - y0)


# --- labels files ---------------------------------------------------------------------------------


def read_label_file(path: Path) -> dict[int, str]:
    """Class id -> label, as pycoral's ``read_label_file`` reads it.

    Either one label per line (the line number is the id) or ``id label`` pairs (Frigate's and
    pycoral's label maps, gaps allowed). Trailing blank lines are ignored.
    """
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise InspectError(f"cannot read labels file {path}: {exc}", ExitStatus.NO_INPUT) from exc
    while lines and not lines[-1].strip():
        lines.pop()
    if not lines:
        raise InspectError(f"labels file {path} is empty", ExitStatus.DATA_ERROR)
    if not re.match(r"^\s*\d+[\s:,]", lines[0] + " "):
        return {i: line.strip() for i, line in enumerate(lines)}
    labels: dict[int, str] = {}
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        match = re.match(r"^\s*(\d+)[\s:,]+(.*\S)\s*$", line)
        if match is None:
            raise InspectError(
                f"labels file {path} line {number}: expected 'id label' like the first line, got {line!r}",
                ExitStatus.DATA_ERROR,
            )
        class_id = int(match.group(1))
        if class_id in labels:
            raise InspectError(
                f"labels file {path} line {number}: id {class_id} given twice", ExitStatus.DATA_ERROR
            )
        labels[class_id] = match.group(2)
    return labels


def labels_from_file(path: Path) -> list[str]:
    """A dense, unique label list indexed by class id: gaps become ``class_<id>``, repeats ``<label>_<id>``.

    Label maps fill unused ids with placeholders such as ``???``; the model card needs each label once.
    """
    by_id = read_label_file(path)
    dense: list[str] = []
    for class_id in range(max(by_id) + 1):
        label = by_id.get(class_id, "") or f"class_{class_id}"
        dense.append(f"{label}_{class_id}" if label in dense else label)
    return dense


# --- which output is which ------------------------------------------------------------------------


def _shape_problems(roles: Mapping[str, TensorSpec]) -> list[str]:
    boxes, classes, scores, count = (roles[r].shape for r in ROLES)
    problems = []
    if len(boxes) != 3 or boxes[0] != 1 or boxes[2] != 4:
        problems.append(f"boxes must be [1, N, 4], got {boxes}")
    n = boxes[1] if len(boxes) == 3 else None
    for role, shape in (("classes", classes), ("scores", scores)):
        if shape != [1, n]:
            problems.append(f"{role} must be [1, {n if n is not None else 'N'}], got {shape}")
    if int(np.prod(count)) != 1:
        problems.append(f"count must hold one value, got shape {count}")
    return problems


def _by_words(names: Mapping[str, TensorSpec]) -> dict[str, TensorSpec] | None:
    """Roles from names that say what they are (``detection_boxes``, ``num_detections``...)."""
    found: dict[str, TensorSpec] = {}
    for role, words in _WORDS:
        hits = {id(t): t for key, t in names.items() if any(w in key.lower() for w in words)}
        if len(hits) == 1:
            found[role] = next(iter(hits.values()))
    return found if len(found) == 4 and len({id(t) for t in found.values()}) == 4 else None


def _by_shape(outputs: Sequence[TensorSpec]) -> dict[str, TensorSpec] | None:
    """Boxes and count are known by shape alone; classes and scores only by their names."""
    boxes = [t for t in outputs if len(t.shape) == 3 and t.shape[-1] == 4]
    count = [t for t in outputs if int(np.prod(t.shape)) == 1]
    rest = [t for t in outputs if t not in boxes and t not in count]
    if len(boxes) != 1 or len(count) != 1 or len(rest) != 2:
        return None
    named = _by_words({t.name: t for t in rest} | {"box": boxes[0], "count": count[0]})
    return named


def find_output_roles(
    outputs: Sequence[TensorSpec], signature_outputs: Mapping[str, str] | None = None
) -> DetectionOutputs:
    """Which output tensor holds boxes, classes, scores and count; a clear error when it cannot be told.

    In order: signature keys that name the role (our own models: ``boxes``...), the TF1 post-process
    tensor names, TF2's ``output_0..3`` signature keys, then shape plus names. Shapes are checked
    whichever rule matched, so a wrong guess fails here and not on the line.
    """
    described = ", ".join(f"{t.name} {t.dtype}{t.shape}" for t in outputs)
    if len(outputs) != 4:
        raise InspectError(
            f"not an SSD-style detector: needs 4 outputs ({_EXPECTED}), the model has {len(outputs)}: "
            f"{described}",
            ExitStatus.DATA_ERROR,
        )
    by_name = {t.name: t for t in outputs}
    signature = {key: by_name[name] for key, name in (signature_outputs or {}).items() if name in by_name}
    candidates: list[tuple[str, dict[str, TensorSpec] | None]] = [
        ("signature keys", _by_words(signature) if len(signature) == 4 else None),
        ("TF1 post-process names", dict(zip(ROLES, (by_name[n] for n in _TF1_NAMES), strict=True))
         if all(n in by_name for n in _TF1_NAMES) else None),
        ("TF2 signature output_0..3", {role: signature[key] for key, role in _TF2_KEYS.items()}
         if set(signature) == set(_TF2_KEYS) else None),
        ("shapes and names", _by_shape(outputs)),
    ]  # fmt: skip
    for rule, roles in candidates:
        if roles is None:
            continue
        problems = _shape_problems(roles)
        if problems:
            raise InspectError(
                f"detector outputs found by {rule} have the wrong shapes: {'; '.join(problems)} "
                f"({described})",
                ExitStatus.DATA_ERROR,
            )
        return DetectionOutputs(**{role: roles[role].name for role in ROLES})
    raise InspectError(
        f"cannot tell which output is boxes, classes, scores and count ({_EXPECTED}) from {described}; "
        "name them with --outputs boxes=NAME,classes=NAME,scores=NAME,count=NAME",
        ExitStatus.DATA_ERROR,
    )


# --- run time -------------------------------------------------------------------------------------


class DetectionHead:
    """Reads one detector's outputs by name, as its card says, into :class:`Detection` lists."""

    def __init__(self, spec: DetectionSpec, labels: list[str], outputs: Sequence[TensorSpec]) -> None:
        names = [t.name for t in outputs]
        missing = [name for name in spec.outputs.model_dump().values() if name not in names]
        if missing:
            raise InspectError(
                f"model card detection.outputs names tensor(s) {missing} the model does not have "
                f"(outputs: {names})",
                ExitStatus.DATA_ERROR,
            )
        self.spec = spec
        self.labels = labels
        self._index = {role: names.index(getattr(spec.outputs, role)) for role in ROLES}

    def parse(
        self, outputs: Sequence[np.ndarray], input_size: tuple[int, int], transform: Transform
    ) -> list[Detection]:
        """Dequantized outputs -> detections at or above the card's score threshold, best first.

        ``input_size`` is the model's (width, height); ``transform`` maps model pixels to the image's.
        """
        boxes = np.asarray(outputs[self._index["boxes"]], dtype=np.float32).reshape(-1, 4)
        classes = np.asarray(outputs[self._index["classes"]]).reshape(-1)
        scores = np.asarray(outputs[self._index["scores"]], dtype=np.float32).reshape(-1)
        count = round(float(np.asarray(outputs[self._index["count"]]).reshape(-1)[0]))
        count = min(max(count, 0), len(scores), len(boxes))
        width, height = input_size
        found: list[Detection] = []
        for i in np.argsort(-scores[:count], kind="stable"):
            score = float(scores[i])
            if score < self.spec.score_threshold or len(found) == self.spec.max_detections:
                break
            class_id = round(float(classes[i]))
            index = class_id + self.spec.label_offset
            if not 0 <= index < len(self.labels):
                raise ValueError(
                    f"detector gave class id {class_id}, which has no label: the card has {len(self.labels)} "
                    f"labels with label_offset {self.spec.label_offset} (is the labels file short?)"
                )
            ymin, xmin, ymax, xmax = np.clip(boxes[i], 0.0, 1.0)
            x0, y0 = transform.to_source(float(xmin) * width, float(ymin) * height)
            x1, y1 = transform.to_source(float(xmax) * width, float(ymax) * height)
            found.append(Detection(self.labels[index], class_id, score, (x0, y0, x1, y1)))
        return found


def label_scores(
    detections: Sequence[Detection], defect_labels: Sequence[str], good_label: str | None
) -> dict[str, float]:
    """Per defect label its best detection's score (0 when none), and the good label 1 - the best of those.

    This is what the decision rules read, as they read a classifier's probabilities: the defect
    score is the strongest defect detection, and per-label thresholds apply per defect label.
    """
    scores = dict.fromkeys(defect_labels, 0.0)
    for detection in detections:
        if detection.label in scores:
            scores[detection.label] = max(scores[detection.label], detection.score)
    if good_label is not None:
        scores[good_label] = 1.0 - max(scores.values(), default=0.0)
    return scores


def regions_in_frame(
    detections: Sequence[Detection], crop: tuple[int, int, int, int], frame_shape: tuple[int, ...]
) -> list[Region]:
    """Detections in crop pixels -> event regions in frame pixels, clipped to the frame.

    ``crop`` is the inspected box (x, y, w, h) in the frame; it may reach past the frame edge
    (a part near the edge), so boxes are clipped, and one wholly in the padding is dropped.
    """
    height, width = frame_shape[:2]
    regions = []
    for detection in detections:
        x, y, w, h = detection.rect(crop[0], crop[1])
        x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + w, width), min(y + h, height)
        if x1 <= x0 or y1 <= y0:
            continue
        box = [x0, y0, x1 - x0, y1 - y0]
        score = min(1.0, max(0.0, detection.score))
        regions.append(Region(box=box, score=score, area=box[2] * box[3], label=detection.label))
    return regions
