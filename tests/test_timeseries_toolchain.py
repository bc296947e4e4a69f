"""A tiny sensor model through the real tools: synth -> train -> convert (float32, int8) -> evaluate.

Tiny on purpose (a few epochs, 4 filters): this checks the plumbing and the honesty of the figures
(float32 TFLite reproduces Keras; every card says how its variant agreed), not the model's quality.
The quality figures come from scripts/build_sensor_model.py (docs/timeseries.md).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from agent.model import TFLiteModel
from agent.modelcard import load_card, load_series_card
from agent.status import InspectError
from tools.cli import main

TS = ["--task", "timeseries"]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("ts")
    assert main(["synth", *TS, "--out", str(root / "data"), "--duration", "900", "--seed", "11"]) == 0
    assert main(["synth", *TS, "--out", str(root / "hold"), "--duration", "300", "--seed", "12"]) == 0
    train = ["train", *TS, "--data", str(root / "data"), "--out", str(root / "run"), "--window", "32"]
    train += ["--stride", "8", "--train-stride", "8", "--width", "4", "--epochs", "2", "--patience", "1"]
    assert main(train) == 0
    convert = ["convert", *TS, "--model", str(root / "run/model.keras"), "--out", str(root / "models")]
    # float32 and int8 (the hard case for an LSTM); dynamic-range is built by scripts/build_sensor_model.py
    assert main([*convert, "--name", "tiny", "--rep-samples", "60", "--variants", "float32,int8"]) == 0
    return root


def test_training_record_has_standardisation_from_training_part_and_no_overlap(run: Path) -> None:
    record = json.loads((run / "run/training.json").read_text())
    data, series = record["data"], record["series"]
    assert data["train_samples"][1] + series["window"] <= data["validation_samples"][0]
    assert series["channels"] == ["temperature", "pressure", "vibration", "speed", "current"]
    assert series["sample_rate_hz"] == 10.0 and series["window"] == 32 and series["stride"] == 8
    from tools.timeseries.synth import read_series

    _channels, _t, values, _anomaly = read_series(run / "data")
    train_values = values[: data["train_samples"][1]]
    assert np.allclose(series["mean"], train_values.mean(axis=0), rtol=1e-4)
    assert not np.allclose(series["mean"], values.mean(axis=0), rtol=1e-6)
    assert (run / "run/curves.png").stat().st_size > 0
    assert 0.0 <= record["thresholds"]["defect"] <= 1.0


def test_every_variant_has_a_card_the_agent_accepts_and_one_is_recommended(run: Path) -> None:
    cards = {v: load_series_card(run / f"models/tiny_{v}.json") for v in ("float32", "int8")}
    for variant, card in cards.items():
        assert card.task == "timeseries" and card.quantization == variant
        assert card.input.shape == [1, 32, 5] and card.input.stride == 8
        verification = card.metrics["verification"]
        assert verification["passed"] == (verification["decision_agreement"] >= 0.98)
        card.verify_file(run / f"models/{card.tflite_file}")
    assert cards["float32"].metrics["verification"]["max_abs_diff"] < 1e-4  # float32 TFLite is Keras
    assert sum(card.recommended for card in cards.values()) == 1
    with pytest.raises(InspectError, match="time-series model"):
        load_card(run / "models/tiny_float32.json")  # the image agent refuses it by name


def test_evaluate_reports_window_and_span_metrics_size_and_latency(run: Path) -> None:
    models = [str(run / "run/model.keras"), str(run / "models/tiny_float32.tflite")]
    argv = [
        "evaluate",
        *TS,
        "--data",
        str(run / "hold"),
        "--out",
        str(run / "report"),
        "--latency-runs",
        "20",
    ]
    assert main([*argv, *(f"--model={m}" for m in models)]) == 0
    report = json.loads((run / "report/evaluation.json").read_text())
    keras, tflite = report["models"]
    for result in (keras, tflite):
        m = result["metrics"]
        assert set(m) >= {"accuracy", "precision", "recall", "f1", "roc_auc", "confusion_matrix"}
        assert sum(map(sum, m["confusion_matrix"])) == m["windows"]
        assert 0.0 <= result["spans"]["recall"] <= 1.0
        assert result["parts"]["parts"] == 50  # 300 s, one part every 6 s
    assert keras["metrics"]["confusion_matrix"] == tflite["metrics"]["confusion_matrix"]
    assert tflite["latency_ms"]["p50"] > 0 and keras["latency_ms"] is None
    assert (run / "report/signals_tiny_float32_tflite.png").stat().st_size > 0
    assert TFLiteModel(run / "models/tiny_float32.tflite").inputs[0].shape == [1, 32, 5]


def test_a_failing_conversion_is_one_clear_error(run: Path, tmp_path: Path) -> None:
    record = json.loads((run / "run/training.json").read_text())
    record["architecture"] = "transformer"  # the converter process cannot rebuild it: it fails, we do not
    (tmp_path / "training.json").write_text(json.dumps(record))
    shutil.copy(run / "run/model.keras", tmp_path / "model.keras")
    argv = ["convert", *TS, "--model", str(tmp_path / "model.keras"), "--out", str(tmp_path / "o")]
    expected = "TFLite converter failed for the float32 variant: ValueError: architecture"
    with pytest.raises(InspectError, match=expected):
        from tools.timeseries import convert
        from tools.timeseries.cli import build_parser

        convert.run(build_parser().parse_args([*argv, "--variants", "float32", "--rep-samples", "10"]))


def test_convert_refuses_an_image_training_record(run: Path, tmp_path: Path) -> None:
    (tmp_path / "training.json").write_text(json.dumps({"task": "classification"}))
    (tmp_path / "model.keras").write_bytes(b"not a model")
    argv = ["convert", *TS, "--model", str(tmp_path / "model.keras"), "--out", str(tmp_path / "o")]
    assert main(argv) == 65
