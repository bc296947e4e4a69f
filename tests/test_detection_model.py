"""Detectors built by our own tools, read by the agent: train --task detection -> convert -> card -> bundle.

Training is one epoch on 32 small images: the model is untrained and its scores sit near the prior,
so parsing is checked with the score threshold at 0 (every one of the K rows comes back) against the
Keras model on the same pixels; detection quality is the business of the bundled demo detector
(tests/test_detection_agent.py) and docs/detection.md.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest

from agent.bundle import ModelBundle, load_bundle
from agent.detection import DetectionHead
from agent.modelcard import load_card
from agent.status import ExitStatus
from tests.agent_harness import DEMO_MODEL
from tools.cli import main

SIZE = 64
MAX_DETECTIONS = 10


@dataclass
class Run:
    data: Path
    run: Path
    models: Path
    labels: list[str]


@pytest.fixture(scope="module")
def detector(tmp_path_factory: pytest.TempPathFactory) -> Run:
    root = tmp_path_factory.mktemp("detector")
    data, run, models = root / "data", root / "run", root / "models"
    assert main(["synth", "--out", str(data), "--count", "32", "--size", str(SIZE), "--seed", "3"]) == 0
    train = [
        "train",
        "--task",
        "detection",
        "--data",
        str(data),
        "--out",
        str(run),
        "--input-size",
        str(SIZE),
    ]
    assert main([*train, "--epochs", "1", "--batch-size", "16", "--max-detections", str(MAX_DETECTIONS)]) == 0
    convert = ["convert", "--model", str(run / "model.keras"), "--out", str(models), "--name", "det"]
    # No agreement gate: an untrained model's scores sit at the prior, where int8 rounding reorders
    # near-equal peaks (the gate is exercised by the demo detector's build, docs/detection.md).
    assert main([*convert, "--variants", "float32,int8", "--rep-samples", "8", "--min-agreement", "0"]) == 0
    labels = json.loads((run / "training.json").read_text())["labels"]
    return Run(data, run, models, labels)


def _all_rows(bundle: ModelBundle) -> ModelBundle:
    """The bundle with its score threshold at 0: every row the model returns is parsed."""
    assert bundle.card.detection is not None
    spec = bundle.card.detection.model_copy(update={"score_threshold": 0.0})
    return ModelBundle(
        bundle.card, bundle.model, detector=DetectionHead(spec, bundle.card.labels, bundle.model.outputs)
    )


def _image(run: Run) -> np.ndarray:
    """A defect image as the camera gives it (BGR), twice the model's size (the transform is exercised)."""
    path = next(p for p in sorted(run.data.glob("*/*.png")) if p.parent.name != "good")
    image = cv2.imread(str(path))
    return cv2.resize(image, (2 * SIZE, 2 * SIZE), interpolation=cv2.INTER_LINEAR)


def _keras_rows(run: Run, image: np.ndarray) -> list[tuple[str, float, tuple[float, ...]]]:
    import keras

    from tools.detector import with_postprocess
    from tools.train_detect import predict_detections

    heads = keras.models.load_model(str(run.run / "model.keras"), compile=False)
    model = with_postprocess(heads, len(run.labels), MAX_DETECTIONS)
    pixels = cv2.cvtColor(cv2.resize(image, (SIZE, SIZE), interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2RGB)
    (found,) = predict_detections(model, pixels[None], run.labels)
    # Keras boxes are in model pixels; the bundle's in the 2x image.
    return [(f.label, f.score, tuple(2 * v for v in f.box)) for f in found]


def test_cards_pass_the_strict_check_and_say_how_to_read_the_outputs(detector: Run) -> None:
    for variant, dtype in (("float32", "float32"), ("int8", "uint8")):
        bundle = load_bundle(detector.models / f"det_{variant}.tflite", num_threads=1)
        card = bundle.card
        assert (card.task, card.quantization, card.input.dtype) == ("detection", variant, dtype)
        assert card.labels == detector.labels and card.good_label == "good"
        assert card.detection is not None and card.detection.max_detections == MAX_DETECTIONS
        # The four outputs, all float32 even in the int8 model (class ids and boxes are not rounded).
        assert [t.dtype for t in card.outputs] == ["float32"] * 4
        verification = card.metrics["verification"]
        assert verification["samples"] == 8 and 0.0 <= verification["detection_agreement"] <= 1.0
        assert verification["interpreter"] == bundle.model.backend


def test_float32_bundle_parses_exactly_what_the_keras_model_returns(detector: Run) -> None:
    image = _image(detector)
    bundle = _all_rows(load_bundle(detector.models / "det_float32.tflite", num_threads=1))
    scores, _ = bundle.classify(image)
    expected = sorted(_keras_rows(detector, image), key=lambda row: -row[1])
    got = [(d.label, d.score, d.box) for d in scores.detections]
    assert len(got) == MAX_DETECTIONS
    assert [row[1] for row in got] == pytest.approx([row[1] for row in expected], abs=1e-4)
    for (label, _, box), (want_label, _, want_box) in zip(got, expected, strict=True):
        assert label == want_label
        assert box == pytest.approx(want_box, abs=0.5)  # pixels of the 128x128 image
    assert scores.defect_score == pytest.approx(max(row[1] for row in expected), abs=1e-4)
    assert scores.probabilities["good"] == pytest.approx(1 - scores.defect_score)


def test_int8_bundle_stays_close_to_float(detector: Run) -> None:
    image = _image(detector)
    float_rows = _all_rows(load_bundle(detector.models / "det_float32.tflite", num_threads=1)).classify(image)
    int8_rows = _all_rows(load_bundle(detector.models / "det_int8.tflite", num_threads=1)).classify(image)
    f, q = float_rows[0].detections, int8_rows[0].detections
    assert len(q) == MAX_DETECTIONS
    assert all(0.0 <= d.score <= 1.0 and d.label in detector.labels for d in q)
    assert all(0 <= v <= 2 * SIZE for d in q for v in d.box)
    assert [d.score for d in q] == sorted((d.score for d in q), reverse=True)
    # Ranked scores agree within a few int8 steps of the sigmoid's 0..1 range.
    assert [d.score for d in q] == pytest.approx([d.score for d in f], abs=0.05)


@pytest.fixture(scope="module")
def tf2_model(detector: Run) -> Path:
    """The same network exported with its outputs in TF2's order (count, scores, classes, boxes)."""
    import keras

    from tools.convert import convert_variant
    from tools.detector import with_postprocess
    from tools.source_model import SourceModel

    heads = keras.models.load_model(str(detector.run / "model.keras"), compile=False)
    model = with_postprocess(heads, len(detector.labels), MAX_DETECTIONS, layout="tf2")
    source = SourceModel(detector.run / "model.keras", "keras", (SIZE, SIZE, 3), 4, "", model)
    path = detector.run / "tf2.tflite"
    path.write_bytes(convert_variant(source, "float32", np.zeros((1, SIZE, SIZE, 3), np.uint8)))
    return path


def _copy(model: Path, folder: Path) -> Path:
    shutil.copy(model, folder / model.name)
    return folder / model.name


def test_outputs_in_the_other_order_are_found_and_read_the_same(
    detector: Run, tf2_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _copy(tf2_model, tmp_path)
    labels = tmp_path / "labels.txt"
    labels.write_text("".join(f"{i} {label}\n" for i, label in enumerate(detector.labels)))  # pycoral pairs
    argv = ["card", str(path), "--labels", str(labels), "--good-label", "good", "--mean", "0", "--std", "1"]
    assert main([*argv, "--score-threshold", "0", "--max-detections", str(MAX_DETECTIONS)]) == 0
    card = load_card(path.with_suffix(".json"))
    named = load_card(detector.models / "det_float32.json")
    assert card.detection is not None and named.detection is not None
    names = [t.name for t in card.outputs]
    order = [names.index(getattr(card.detection.outputs, r)) for r in ("boxes", "classes", "scores", "count")]
    named_names = [t.name for t in named.outputs]
    named_order = [
        named_names.index(getattr(named.detection.outputs, r))
        for r in ("boxes", "classes", "scores", "count")
    ]
    assert order != named_order, "the test needs a model whose outputs come in another order"
    image = _image(detector)
    got = load_bundle(path, num_threads=1).classify(image)[0].detections
    want = _all_rows(load_bundle(detector.models / "det_float32.tflite", num_threads=1)).classify(image)[0]
    assert [(d.label, d.class_id) for d in got] == [(d.label, d.class_id) for d in want.detections]
    np.testing.assert_allclose([d.box for d in got], [d.box for d in want.detections], atol=1e-3)
    assert "outputs {'boxes'" in capsys.readouterr().out


def test_labels_file_shorter_than_the_class_ids_is_a_clear_error(
    detector: Run, tf2_model: Path, tmp_path: Path
) -> None:
    path = _copy(tf2_model, tmp_path)
    (tmp_path / "labels.txt").write_text(f"{detector.labels[0]}\n")  # the model has 5 classes
    assert main(["card", str(path), "--labels", str(tmp_path / "labels.txt"), "--score-threshold", "0"]) == 0
    bundle = load_bundle(path, num_threads=1)
    with pytest.raises(ValueError, match=r"class id [1-9], which has no label: the card has 1 labels"):
        bundle.classify(_image(detector))


def test_a_classifier_given_as_detector_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = _copy(DEMO_MODEL, tmp_path)
    (tmp_path / "labels.txt").write_text("good\nscratch\n")
    code = main(["card", str(model), "--task", "detection", "--labels", str(tmp_path / "labels.txt")])
    assert code == ExitStatus.DATA_ERROR
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not an SSD-style detector: needs 4 outputs" in err[0], err
    assert not model.with_suffix(".json").exists()


def test_card_never_overwrites_without_force(detector: Run, tmp_path: Path) -> None:
    model = _copy(detector.models / "det_float32.tflite", tmp_path)
    model.with_suffix(".json").write_text("{}")
    (tmp_path / "labels.txt").write_text("\n".join(detector.labels))
    assert main(["card", str(model), "--labels", str(tmp_path / "labels.txt")]) == ExitStatus.CANT_CREATE
    assert model.with_suffix(".json").read_text() == "{}"
    assert main(["card", str(model), "--labels", str(tmp_path / "labels.txt"), "--force"]) == 0
    assert load_card(model.with_suffix(".json")).task == "detection"  # auto: 4 outputs


def test_evaluate_reports_detection_figures_through_the_bundle(detector: Run, tmp_path: Path) -> None:
    models = [detector.models / f"det_{v}.tflite" for v in ("float32", "int8")]
    argv = ["evaluate", "--data", str(detector.data), "--out", str(tmp_path), "--latency-runs", "3"]
    assert main([*argv, *(arg for m in models for arg in ("--model", str(m)))]) == 0
    report = json.loads((tmp_path / "report.json").read_text())
    assert [v["quantization"] for v in report["variants"]] == ["float32", "int8"]
    for variant in report["variants"]:
        detection, images = variant["detection"], variant["image_level"]
        # Every defect image of the set has its box; good images have none.
        assert detection["true_boxes"] == images["defect_images"] > 0
        assert detection["images"] == images["defect_images"] + images["good_images"] == 32
        assert detection["map"] is None or 0.0 <= detection["map"] <= 1.0
        assert variant["invoke_ms_1_thread"]["runs"] == 3
