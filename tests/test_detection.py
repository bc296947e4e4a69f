"""agent/detection.py without a model: labels files, which output is which, parsing, regions, the card."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import numpy as np
import pytest

from agent.detection import (
    Detection,
    DetectionHead,
    find_output_roles,
    label_scores,
    labels_from_file,
    read_label_file,
    regions_in_frame,
)
from agent.messages import Event
from agent.modelcard import DetectionOutputs, DetectionSpec, ModelCard, TensorSpec
from agent.preprocess import Transform
from agent.status import InspectError
from tests.agent_harness import SCHEMAS


def _spec(name: str, shape: list[int]) -> TensorSpec:
    return TensorSpec(name=name, shape=shape, dtype="float32")


TF1 = [
    _spec("TFLite_Detection_PostProcess", [1, 10, 4]),
    _spec("TFLite_Detection_PostProcess:1", [1, 10]),
    _spec("TFLite_Detection_PostProcess:2", [1, 10]),
    _spec("TFLite_Detection_PostProcess:3", [1]),
]
# TF2 exports: tensor names say nothing, interpreter order differs from the signature's.
TF2 = [
    _spec("StatefulPartitionedCall:1", [1, 10, 4]),
    _spec("StatefulPartitionedCall:3", [1, 10]),
    _spec("StatefulPartitionedCall:0", [1]),
    _spec("StatefulPartitionedCall:2", [1, 10]),
]
TF2_SIGNATURE = {
    "output_0": "StatefulPartitionedCall:0",
    "output_1": "StatefulPartitionedCall:3",
    "output_2": "StatefulPartitionedCall:2",
    "output_3": "StatefulPartitionedCall:1",
}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("scratch\ncrack\n", ["scratch", "crack"]),  # one per line
        ("scratch\ncrack\n\n\n", ["scratch", "crack"]),  # trailing blank lines ignored
        ("0 person\n1 bicycle\n3 car\n", ["person", "bicycle", "class_2", "car"]),  # pycoral pairs, a gap
        ("0  traffic light\n1 stop sign\n", ["traffic light", "stop sign"]),  # Frigate: labels with spaces
        ("???\nperson\n???\ncar\n", ["???", "person", "???_2", "car"]),  # placeholders kept unique
        ("1: scratch\n0: crack\n", ["crack", "scratch"]),  # "id: label", any order
    ],
)
def test_labels_file_forms(tmp_path: Path, text: str, expected: list[str]) -> None:
    path = tmp_path / "labels.txt"
    path.write_text(text)
    assert labels_from_file(path) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "is empty"),
        ("\n\n", "is empty"),
        ("0 person\nbicycle\n", "line 2: expected 'id label'"),  # pairs, then a bare label
        ("0 person\n0 car\n", "id 0 given twice"),
    ],
)
def test_bad_labels_files_are_one_clear_error(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "labels.txt"
    path.write_text(text)
    with pytest.raises(InspectError, match=message):
        read_label_file(path)


@pytest.mark.parametrize(
    ("outputs", "signature", "expected"),
    [
        # Our own models: signature keys name the roles; interpreter order is boxes, classes, S:3, S:2.
        (
            [_spec("S:0", [1, 10, 4]), _spec("S:1", [1, 10]), _spec("S:3", [1, 10]), _spec("S:2", [1])],
            {"boxes": "S:0", "classes": "S:1", "count": "S:2", "scores": "S:3"},
            ("S:0", "S:1", "S:3", "S:2"),
        ),
        (TF1, None, tuple(t.name for t in TF1)),  # TF1: the post-process op's own names
        (
            TF2,
            TF2_SIGNATURE,
            (
                "StatefulPartitionedCall:1",
                "StatefulPartitionedCall:2",
                "StatefulPartitionedCall:3",
                "StatefulPartitionedCall:0",
            ),
        ),
        # No signature: boxes and count by shape, the other two by their names.
        (
            [
                _spec("detection_scores", [1, 5]),
                _spec("detection_boxes", [1, 5, 4]),
                _spec("num_detections", [1]),
                _spec("detection_classes", [1, 5]),
            ],
            None,
            ("detection_boxes", "detection_classes", "detection_scores", "num_detections"),
        ),
    ],
)
def test_output_roles_whatever_the_order(
    outputs: list[TensorSpec], signature: dict[str, str] | None, expected: tuple[str, ...]
) -> None:
    roles = find_output_roles(outputs, signature)
    assert (roles.boxes, roles.classes, roles.scores, roles.count) == expected


@pytest.mark.parametrize(
    ("outputs", "message"),
    [
        ([_spec("probabilities", [1, 6])], "not an SSD-style detector: needs 4 outputs"),  # a classifier
        (  # two [1, N] outputs that nothing tells apart
            [_spec("a", [1, 10, 4]), _spec("b", [1, 10]), _spec("c", [1, 10]), _spec("d", [1])],
            "cannot tell which output.*--outputs",
        ),
        (  # TF1 names, but boxes are not [1, N, 4]
            [
                TensorSpec(name=t.name, shape=[1, 10, 5] if i == 0 else t.shape, dtype="float32")
                for i, t in enumerate(TF1)
            ],
            "boxes must be \\[1, N, 4\\]",
        ),
    ],
)
def test_output_roles_refused_with_a_clear_error(outputs: list[TensorSpec], message: str) -> None:
    with pytest.raises(InspectError, match=message):
        find_output_roles(outputs)


def _head(labels: list[str], **spec: Any) -> DetectionHead:
    outputs = DetectionOutputs(boxes="b", classes="c", scores="s", count="n")
    # Interpreter order deliberately not the role order: the head must go by name.
    tensors = [_spec("s", [1, 4]), _spec("n", [1]), _spec("b", [1, 4, 4]), _spec("c", [1, 4])]
    return DetectionHead(DetectionSpec(outputs=outputs, **spec), labels, tensors)


def _raw(
    boxes: list[list[float]], classes: list[float], scores: list[float], count: float
) -> list[np.ndarray]:
    return [np.array([scores], np.float32), np.array([count], np.float32),
            np.array([boxes], np.float32), np.array([classes], np.float32)]  # fmt: skip


BOXES = [[0.1, 0.2, 0.3, 0.4], [0.5, 0.5, 1.2, 0.9], [0.0, 0.0, 0.1, 0.1], [0.0, 0.0, 1.0, 1.0]]


def test_parse_reads_by_name_thresholds_and_maps_to_image_pixels() -> None:
    head = _head(["scratch", "crack"], score_threshold=0.3)
    # 200x100 image stretched to a 100x100 model input: x scale 0.5, y scale 1.
    found = head.parse(_raw(BOXES, [1, 0, 1, 0], [0.9, 0.6, 0.2, 0.95], 3), (100, 100), Transform(0.5, 1.0))
    # Row 3 (0.95) is beyond count; row 2 is below the threshold; best first.
    assert [(d.label, d.class_id, round(d.score, 2)) for d in found] == [
        ("crack", 1, 0.9),
        ("scratch", 0, 0.6),
    ]
    assert found[0].box == pytest.approx((40.0, 10.0, 80.0, 30.0))  # xmin*100/0.5, ymin*100 ...
    assert found[1].box == pytest.approx((100.0, 50.0, 180.0, 100.0))  # ymax 1.2 clipped to the image


def test_parse_letterbox_offset_max_detections_and_label_offset() -> None:
    head = _head(["???", "scratch", "crack"], score_threshold=0.0, max_detections=1, label_offset=1)
    # Letterboxed 200x100 frame in a 100x100 input: scale 0.5, 25 px bands top and bottom.
    found = head.parse(
        _raw(BOXES, [0, 1, 1, 1], [0.4, 0.7, 0.1, 0.2], 4), (100, 100), Transform(0.5, 0.5, 0, 25)
    )
    assert len(found) == 1
    assert (found[0].label, found[0].class_id) == ("crack", 1)  # id 1 + offset 1
    assert found[0].box == pytest.approx((100.0, 50.0, 180.0, 150.0))  # (50 - 25) / 0.5 ...


def test_class_id_beyond_the_labels_is_a_clear_error() -> None:
    head = _head(["scratch", "crack"], score_threshold=0.3)
    with pytest.raises(ValueError, match="class id 4, which has no label: the card has 2 labels"):
        head.parse(_raw(BOXES, [4, 0, 0, 0], [0.9, 0.1, 0.1, 0.1], 4), (100, 100), Transform(1.0, 1.0))


def test_head_refuses_a_card_naming_tensors_the_model_lacks() -> None:
    outputs = DetectionOutputs(boxes="b", classes="c", scores="s", count="missing")
    with pytest.raises(InspectError, match="\\['s', 'missing'\\] the model does not have"):
        DetectionHead(DetectionSpec(outputs=outputs), ["x"], [_spec("b", [1, 4, 4]), _spec("c", [1, 4])])


def test_label_scores_feed_the_decision_like_probabilities() -> None:
    found = [Detection("crack", 1, 0.8, (0, 0, 1, 1)), Detection("crack", 1, 0.5, (0, 0, 1, 1)),
             Detection("part", 2, 0.99, (0, 0, 1, 1))]  # fmt: skip
    # "part" is not a defect label: it never moves the defect score.
    assert label_scores(found, ["scratch", "crack"], "good") == pytest.approx(
        {"scratch": 0.0, "crack": 0.8, "good": 0.2}
    )
    assert label_scores([], ["scratch"], None) == {"scratch": 0.0}


def test_regions_move_to_frame_pixels_clip_and_validate_against_the_event_schema() -> None:
    found = [
        Detection("crack", 1, 0.8, (10.2, 20.0, 30.7, 25.0)),
        Detection("scratch", 0, 0.5, (-15.0, 40.0, 40.0, 80.0)),  # the crop reaches past the frame: clipped
        Detection("scratch", 0, 0.4, (0.0, 90.0, 40.0, 110.0)),  # wholly in the padding below: dropped
    ]
    regions = regions_in_frame(found, (600, 300, 120, 120), (360, 640, 3))
    assert [r.box for r in regions] == [[610, 320, 21, 5], [585, 340, 55, 20]]
    assert [r.area for r in regions] == [105, 1100]
    assert [r.label for r in regions] == ["crack", "scratch"]
    event = Event.model_validate(_event_fields(regions))
    schema = json.loads((SCHEMAS / "event.schema.json").read_text())
    jsonschema.validate(json.loads(event.model_dump_json()), schema)
    # Old consumers: a region without a label is still valid.
    jsonschema.validate(
        {**_event_fields([]), "regions": [{"box": [1, 2, 3, 4], "score": 0.5, "area": 12}]}, schema
    )


def _event_fields(regions: list[Any]) -> dict[str, Any]:
    return {
        "event_id": "dev-cam-1-abc", "ts": "2026-01-31T08:15:02.123Z", "seq": 1, "device": "dev",
        "camera": "cam", "verdict": "NG", "label": "crack", "score": 0.8, "defect_score": 0.8,
        "threshold": 0.5, "regions": regions,
        "model": {"name": "m", "version": "1", "sha256": "0" * 64},
        "frame": {"width": 640, "height": 360, "index": 3},
    }  # fmt: skip


def _card(**changes: Any) -> dict[str, Any]:
    card = {
        "name": "det", "task": "detection", "labels": ["scratch", "crack"], "good_label": "good",
        "quantization": "int8",
        "input": {"name": "image", "shape": [1, 64, 64, 3], "dtype": "uint8",
                  "quantization": {"scale": 1.0, "zero_point": 0}},
        "outputs": [{"name": n, "shape": s, "dtype": "float32"}
                    for n, s in (("b", [1, 4, 4]), ("c", [1, 4]), ("s", [1, 4]), ("n", [1]))],
        "detection": {"outputs": {"boxes": "b", "classes": "c", "scores": "s", "count": "n"}},
        "tflite_file": "det.tflite", "tflite_sha256": "0" * 64, "tflite_bytes": 1, "created": "now",
    }  # fmt: skip
    card.update(changes)
    return card


def test_detection_card_rules() -> None:
    card = ModelCard.model_validate(_card())
    assert card.defect_labels == ["scratch", "crack"]  # "good" names "nothing found", not a class
    assert ModelCard.model_validate(_card(detection={**_card()["detection"], "defect_labels": ["crack"]})
                                    ).defect_labels == ["crack"]  # fmt: skip
    with pytest.raises(ValueError, match="detection section is required"):
        ModelCard.model_validate(_card(detection=None))
    with pytest.raises(ValueError, match="detection section is required"):
        ModelCard.model_validate(_card(task="classification", good_label=None))
    with pytest.raises(ValueError, match="not among outputs"):
        ModelCard.model_validate(_card(detection={"outputs": {"boxes": "x", "classes": "c", "scores": "s",
                                                              "count": "n"}}))  # fmt: skip
    with pytest.raises(ValueError, match="defect_labels names unknown labels"):
        ModelCard.model_validate(_card(detection={**_card()["detection"], "defect_labels": ["dent"]}))
