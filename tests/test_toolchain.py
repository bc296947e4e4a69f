"""synth -> train -> convert (all four variants) -> evaluate, for real, on a tiny generated set.

One session-scoped run (tests/toolchain_run.py, shared with the heatmap tests) keeps
TensorFlow's start-up and training to ~1 minute; each test checks one promise on its outputs.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from agent.bundle import load_bundle
from agent.model import TFLiteModel
from agent.modelcard import card_path_for, file_sha256, load_card
from agent.status import ExitStatus
from tests.toolchain_run import INPUT_SIZE, Run
from tools.cli import main
from tools.convert import VARIANTS

pytestmark = pytest.mark.slow

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_training_writes_model_record_and_curves(toolchain: Run) -> None:
    record = json.loads((toolchain.run / "training.json").read_text())
    assert record["labels"] == ["crack", "good", "scratch", "spot"]
    assert record["good_label"] == "good"
    assert record["input"]["shape"] == [1, INPUT_SIZE, INPUT_SIZE, 3]
    assert record["epochs_run"] == 8 and 1 <= record["best_epoch"] <= 8
    assert record["defect_map_supervision"] is True  # synth writes masks; training used them
    assert record["data"]["train"]["skipped"] == {"unreadable": 1, "not_an_image": 1}
    assert sum(record["data"]["train"]["classes"].values()) == record["data"]["validation"]["images"] == 240
    assert set(record["class_weights"]) == {"0", "1", "2", "3"}
    # Default balance: good parts weigh as much as all defects together (counts are of the training split).
    counts = record["data"]["train"]["classes"]
    total = {name: record["class_weights"][str(i)] * counts[name] for i, name in enumerate(record["labels"])}
    assert total["good"] == pytest.approx(sum(total.values()) / 2)
    assert record["args"]["map_context"] is True  # the map head reads the 1/16 features too
    assert 0.0 <= record["thresholds"]["defect"] <= 1.0
    assert (toolchain.run / "curves.png").read_bytes().startswith(PNG_MAGIC)
    assert record["model_sha256"] == file_sha256(toolchain.run / "model.keras")


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_variant_has_a_matching_card(toolchain: Run, variant: str) -> None:
    path = toolchain.models / f"parts_{variant}.tflite"
    card = load_card(card_path_for(path))
    card.verify_file(path)  # sha256 matches
    model = TFLiteModel(path, num_threads=1)
    card.verify_tensors(model.inputs, model.outputs)  # shapes and dtypes match
    assert card.quantization == variant
    assert card.input.shape == [1, INPUT_SIZE, INPUT_SIZE, 3]
    assert card.input.color_order == "RGB"
    assert card.labels == ["crack", "good", "scratch", "spot"] and card.good_label == "good"
    assert card.tflite_bytes == path.stat().st_size
    assert card.source_model["sha256"] == file_sha256(toolchain.run / "model.keras")
    assert {"tensorflow", "keras", "inspect-edge"} <= set(card.tools)
    check = card.metrics["verification"]
    assert check["passed"] and check["samples"] == 200  # --rep-samples default
    assert check["confident_agreement"] >= 0.97 and check["confident_samples"] >= 50


def test_int8_model_has_identity_uint8_input_and_quantized_output(toolchain: Run) -> None:
    card = load_card(toolchain.models / "parts_int8.json")
    assert card.input.dtype == "uint8"
    assert card.input.quantization is not None
    # Input range pinned to 0..255, so device preprocessing is a resize and a cast.
    assert (card.input.quantization.scale, card.input.quantization.zero_point) == (1.0, 0)
    output = next(o for o in card.outputs if o.signature_name == "probabilities")
    assert output.dtype == "uint8" and output.shape == [1, 4]
    assert output.quantization is not None and output.quantization.scale == pytest.approx(1 / 256)


def test_quantized_variants_agree_with_float(toolchain: Run) -> None:
    cards = {v: load_card(toolchain.models / f"parts_{v}.json") for v in VARIANTS}
    assert cards["float32"].metrics["verification"]["max_abs_diff"] < 1e-4
    assert cards["float16"].metrics["verification"]["max_abs_diff"] < 0.02
    assert cards["int8"].metrics["verification"]["mean_abs_diff"] < 0.05
    sizes = {v: card.tflite_bytes for v, card in cards.items()}
    assert sizes["int8"] < 0.45 * sizes["float32"]  # weights 4x smaller; graph overhead dominates tiny models
    assert sizes["float16"] < 0.7 * sizes["float32"]


def test_int8_io_option_gives_signed_input(toolchain: Run, tmp_path: Path) -> None:
    argv = ["convert", "--model", str(toolchain.run / "model.keras"), "--out", str(tmp_path), "--name", "s"]
    assert main([*argv, "--variants", "int8", "--int8-io", "int8", "--rep-data", str(toolchain.data)]) == 0
    card = load_card(tmp_path / "s_int8.json")
    assert card.input.dtype == "int8" and card.input.quantization is not None
    assert (card.input.quantization.scale, card.input.quantization.zero_point) == (1.0, -128)
    assert card.outputs[0].dtype == "int8"


def test_evaluate_reports_every_variant(toolchain: Run) -> None:
    report = json.loads((toolchain.report / "report.json").read_text())
    names = [v["name"] for v in report["variants"]]
    assert names == ["model.keras", *(f"parts_{v}.tflite" for v in VARIANTS)]
    assert report["data"]["images"] == 240 and report["data"]["skipped"]["unreadable"] == 1
    for variant in report["variants"]:
        metrics = variant["metrics"]
        assert 0.0 <= metrics["accuracy"] <= 1.0
        assert set(metrics["per_class"]) >= {"good", "crack", "scratch", "spot"}
        assert np.sum(metrics["confusion_matrix"]) == 240
        assert metrics["defect_roc_auc"] is not None
        assert variant["threshold_for_target_recall"]["recall"] >= 0.98
        # Per-kind recall of the good/defect decision adds up to the overall recall at that threshold.
        flagged = variant["flagged_by_class"]["target_threshold"]
        support = {name: metrics["per_class"][name]["support"] for name in flagged}
        defects = [name for name in flagged if name != "good"]
        caught = sum(flagged[name] * support[name] for name in defects)
        recall = caught / sum(support[name] for name in defects)
        assert recall == pytest.approx(variant["threshold_for_target_recall"]["recall"])
        if variant["kind"] == "tflite":
            assert set(variant["latency_ms"]) == {"threads_1", f"threads_{report_threads()}"}
        for plot in variant["plots"].values():
            assert (toolchain.report / plot).read_bytes().startswith(PNG_MAGIC)
    assert (toolchain.report / "roc.png").read_bytes().startswith(PNG_MAGIC)
    assert "parts_int8.tflite" in (toolchain.report / "report.md").read_text()
    assert "Flagged NG per true class" in (toolchain.report / "report.md").read_text()
    assert "<table>" in (toolchain.report / "report.html").read_text()


def report_threads() -> int:
    import os

    return os.cpu_count() or 1


def test_write_threshold_updates_cards_and_keeps_them_valid(toolchain: Run) -> None:
    report = json.loads((toolchain.report / "report.json").read_text())
    int8 = next(v for v in report["variants"] if v["name"] == "parts_int8.tflite")
    card = load_card(toolchain.models / "parts_int8.json")
    assert card.thresholds.defect == pytest.approx(int8["threshold_for_target_recall"]["threshold"])
    assert card.thresholds.source.startswith("evaluate on")
    card.verify_file(toolchain.models / "parts_int8.tflite")


def test_evaluate_refuses_a_card_that_does_not_match(
    toolchain: Run, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The float32 card placed beside the int8 model: hashes and tensors disagree.
    shutil.copy(toolchain.models / "parts_int8.tflite", tmp_path / "parts.tflite")
    shutil.copy(toolchain.models / "parts_float32.json", tmp_path / "parts.json")
    code = main(
        [
            "evaluate",
            "--data",
            str(toolchain.data),
            "--out",
            str(tmp_path / "r"),
            "--model",
            str(tmp_path / "parts.tflite"),
        ]
    )
    assert code == ExitStatus.DATA_ERROR
    assert "does not match" in capsys.readouterr().err


def test_agreement_gate_fails_with_exit_3(
    toolchain: Run, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [
        "convert",
        "--model",
        str(toolchain.run / "model.keras"),
        "--out",
        str(tmp_path),
        "--variants",
        "int8",
    ]
    assert main([*argv, "--min-agreement", "1.01"]) == ExitStatus.CHECK_FAILED
    assert "below --min-agreement" in capsys.readouterr().err
    assert load_card(tmp_path / "run_int8.json").metrics["verification"]["passed"] is False


def test_a_trained_model_beats_chance_on_its_images(toolchain: Run) -> None:
    """Guards against a pipeline that runs but learns nothing (e.g. colour order mixed up)."""
    report = json.loads((toolchain.report / "report.json").read_text())
    keras_auc = report["variants"][0]["metrics"]["defect_roc_auc"]
    assert keras_auc > 0.6


def test_grey_images_train_a_grey_model(tmp_path: Path) -> None:
    data = tmp_path / "data"
    for label in ("good", "scratch"):
        (data / label).mkdir(parents=True)
        for i in range(6):
            image = np.full((50 + i, 70, 1), 90, np.uint8)
            if label == "scratch":
                cv2.line(image, (5, 5), (60, 40), 255, 2)
            cv2.imwrite(str(data / label / f"{i}.png"), image)
    argv = ["train", "--data", str(data), "--out", str(tmp_path / "run"), "--epochs", "1", "--color", "gray"]
    assert main([*argv, "--input-size", "32", "--width", "0.5"]) == 0
    record = json.loads((tmp_path / "run" / "training.json").read_text())
    assert record["input"]["shape"] == [1, 32, 32, 1] and record["input"]["color_order"] == "GRAY"
    # No masks: the heatmap is a class activation map built into the graph (1 - p(good) per 1/16 cell),
    # with the image threshold as its pixel threshold; it survives conversion and the agent reads it.
    assert record["heatmap"]["kind"] == "class_activation"
    assert record["defect_map_supervision"] is False and record["args"]["map_context"] is False
    assert record["heatmap"]["threshold"] == pytest.approx(record["thresholds"]["defect"])
    convert = ["convert", "--model", str(tmp_path / "run" / "model.keras"), "--out", str(tmp_path / "m")]
    assert main([*convert, "--variants", "float32", "--rep-data", str(data), "--min-agreement", "0"]) == 0
    bundle = load_bundle(tmp_path / "m" / "run_float32.tflite", num_threads=1)
    scores, _ = bundle.classify(cv2.imread(str(data / "scratch" / "0.png")))
    assert scores.heatmap is not None and scores.heatmap.kind == "class_activation"
    assert scores.heatmap.values.shape == (2, 2)  # 1/16 of 32 px
    assert np.all((scores.heatmap.values >= 0) & (scores.heatmap.values <= 1))


def test_agent_classifies_images_with_the_int8_bundle(
    toolchain: Run, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from agent.cli import main as agent_main

    images = (
        sorted((toolchain.data / "good").glob("*.png"))[:2]
        + sorted((toolchain.data / "spot").glob("*.png"))[:2]
    )
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"nope")
    model = toolchain.models / "parts_int8.tflite"
    code = agent_main(["once", str(model), *map(str, images), str(broken), "--threads", "1"])
    out, err = capsys.readouterr()
    assert code == ExitStatus.NO_INPUT and "cannot read image" in err  # the others are still judged
    lines = [json.loads(line) for line in out.splitlines()]
    assert [line["image"] for line in lines] == [str(p) for p in images]
    threshold = load_card(card_path_for(model)).thresholds.defect
    for line in lines:
        assert line["verdict"] == ("NG" if line["defect_score"] > threshold else "OK")
        assert line["label"] in ("crack", "good", "scratch", "spot") and 0 <= line["defect_score"] <= 1

    assert agent_main(["info", str(model)]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["quantization"] == "int8" and info["interpreter"] == "ai-edge-litert"


def test_the_device_side_never_imports_tensorflow() -> None:
    import subprocess
    import sys

    code = "import sys, agent.cli, agent.bundle, agent.preprocess; print('tensorflow' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
