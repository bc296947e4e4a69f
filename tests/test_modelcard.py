"""Model card validation: each bad card names the field that is wrong."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from agent.modelcard import ModelCard, TensorSpec, file_sha256, load_card, save_card, with_defect_threshold
from agent.status import ExitStatus, InspectError


def _card_dict(**changes: Any) -> dict[str, Any]:
    card: dict[str, Any] = {
        "name": "parts",
        "labels": ["good", "scratch"],
        "good_label": "good",
        "quantization": "int8",
        "input": {
            "name": "image",
            "shape": [1, 96, 96, 3],
            "dtype": "uint8",
            "quantization": {"scale": 1.0, "zero_point": 0},
        },
        "outputs": [{"name": "probs", "shape": [1, 2], "dtype": "uint8"}],
        "tflite_file": "parts_int8.tflite",
        "tflite_sha256": "0" * 64,
        "tflite_bytes": 10,
        "created": "2026-11-23T00:00:00+00:00",
    }
    card.update(changes)
    return card


def test_minimal_card_round_trips(tmp_path: Path) -> None:
    card = ModelCard.model_validate(_card_dict())
    save_card(card, tmp_path / "m.json")
    assert load_card(tmp_path / "m.json") == card
    assert card.defect_labels == ["scratch"]
    assert card.thresholds.defect == 0.5


@pytest.mark.parametrize(
    ("changes", "where"),
    [
        ({"good_label": "ok"}, "good_label 'ok' is not one of labels"),  # good label must be a label
        ({"labels": ["good", "good"]}, "labels must be unique"),
        ({"input": {"name": "i", "shape": [96, 96, 3], "dtype": "uint8"}}, "input"),  # rank 3, not 4
        (
            {"input": {"name": "i", "shape": [1, 96, 96, 1], "dtype": "uint8"}},
            "needs 3 channel",
        ),  # RGB with 1 ch
        ({"quantization": "int4"}, "quantization"),  # unknown variant
        ({"thresholds": {"defect": 1.5}}, "thresholds.defect"),  # outside 0..1
        ({"thresholds": {"per_label": {"dent": 0.3}}}, "unknown labels ['dent']"),
        ({"colour": "rgb"}, "colour"),  # unknown key rejected, not ignored
    ],
)
def test_bad_card_names_the_problem(tmp_path: Path, changes: dict[str, Any], where: str) -> None:
    path = tmp_path / "m.json"
    path.write_text(json.dumps(_card_dict(**changes)))
    with pytest.raises(InspectError) as info:
        load_card(path)
    assert info.value.status == ExitStatus.DATA_ERROR
    assert where in str(info.value)
    assert str(path) in str(info.value)


def test_missing_and_unreadable_cards(tmp_path: Path) -> None:
    with pytest.raises(InspectError) as info:
        load_card(tmp_path / "nope.json")
    assert info.value.status == ExitStatus.NO_INPUT
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(InspectError, match="not readable JSON"):
        load_card(tmp_path / "bad.json")


def test_card_refuses_a_different_file(tmp_path: Path) -> None:
    model = tmp_path / "parts_int8.tflite"
    model.write_bytes(b"model bytes")
    card = ModelCard.model_validate(_card_dict(tflite_sha256=file_sha256(model)))
    card.verify_file(model)
    model.write_bytes(b"other bytes")
    with pytest.raises(InspectError, match="does not match"):
        card.verify_file(model)


def test_card_refuses_different_tensors() -> None:
    card = ModelCard.model_validate(_card_dict())
    inputs = [TensorSpec(name="image", shape=[1, 96, 96, 3], dtype="uint8")]
    outputs = [TensorSpec(name="probs", shape=[1, 2], dtype="uint8")]
    card.verify_tensors(inputs, outputs)
    with pytest.raises(InspectError, match=r"input is float32\[1, 96, 96, 3\] in the model"):
        card.verify_tensors([TensorSpec(name="image", shape=[1, 96, 96, 3], dtype="float32")], outputs)
    with pytest.raises(InspectError, match=r"output probs is uint8\[1, 3\] in the model"):
        card.verify_tensors(inputs, [TensorSpec(name="probs", shape=[1, 3], dtype="uint8")])


def test_a_calibrated_threshold_below_a_detectors_score_floor_lowers_the_floor(tmp_path: Path) -> None:
    # calibrate/evaluate write the threshold through this: a detector drops detections under its floor
    # before the threshold applies, so a lower threshold must take the floor with it (or the card is invalid).
    detector = load_card(Path(__file__).resolve().parent.parent / "models/demo/detector_int8.json")
    assert detector.detection is not None
    floor = detector.detection.score_threshold
    lower = with_defect_threshold(detector, floor / 2, "line calibration: test", 0.9)
    assert (
        lower.detection is not None
        and lower.detection.score_threshold == lower.thresholds.defect == floor / 2
    )
    assert (lower.thresholds.source, lower.thresholds.target_recall) == ("line calibration: test", 0.9)
    higher = with_defect_threshold(detector, 0.5, "evaluate", 0.98)
    assert higher.detection is not None and higher.detection.score_threshold == floor  # untouched
    save_card(lower, tmp_path / "d.json")
    assert load_card(tmp_path / "d.json") == lower  # valid, and round-trips
