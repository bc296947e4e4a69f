"""``inspect-agent check-config`` and ``run`` on bad input: one clear message and a meaningful exit code."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.cli import main


@pytest.fixture(autouse=True)
def _keep_root_logging() -> Iterator[None]:
    """``run`` installs its own log handler on stderr; later tests must not write to this test's capture."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


MINIMAL = "model: {path: models/demo.tflite}\ncameras:\n  line1: {source: line.avi}\n"


@pytest.mark.parametrize(
    ("text", "code", "expected"),
    [
        (MINIMAL, 0, "OK:"),  # the smallest config from the README
        (MINIMAL + "mqtt: {port: 70000}\n", 78, "mqtt.port"),  # out of range, named by path
        (MINIMAL.replace("source", "sorce"), 78, "cameras.line1.sorce"),  # a typo is an unknown key
        (MINIMAL + "decision: {sensitivity: 2}\n", 78, "decision.sensitivity"),
        (MINIMAL.replace("demo.tflite", "demo.onnx"), 78, "model.path"),  # only TFLite bundles run
        ("cameras: [\n", 78, "invalid YAML"),  # a syntax error, with its line in the table
    ],
)
def test_check_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, code: int, expected: str
) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    assert main(["check-config", str(path)]) == code
    assert expected in capsys.readouterr().out


def test_check_config_missing_file_is_66(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check-config", str(tmp_path / "nope.yaml")]) == 66
    assert "nope.yaml" in capsys.readouterr().out


def test_run_with_an_invalid_config_exits_78_before_starting(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(MINIMAL + "mqtt: {password: plain-text-secret, username: u}\n")
    assert main(["run", str(path)]) == 78
    err = capsys.readouterr().err
    assert "mqtt.password" in err and "plain-text-secret" not in err


def test_run_with_a_missing_model_exits_66(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(MINIMAL)
    assert main(["run", str(path)]) == 66
    assert "model file not found" in capsys.readouterr().err  # the model itself, not its card, is named
