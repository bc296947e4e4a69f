"""``inspect-model calibrate`` on real generated line videos with the bundled int8 model."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.agent_harness import DEMO_MODEL
from tools.cli import main as inspect_model
from tools.synth_video import LineSpec, generate_video


@pytest.fixture(scope="module")
def line(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("cal-line")
    generate_video(out, LineSpec(width=640, height=360, duration=15, seed=21), progress=False)
    return out


def _bundle(tmp_path: Path) -> Path:
    model = tmp_path / DEMO_MODEL.name
    shutil.copy2(DEMO_MODEL, model)
    shutil.copy2(DEMO_MODEL.with_suffix(".json"), model.with_suffix(".json"))
    return model


def test_calibrate_writes_a_line_threshold_into_the_card(
    line: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = _bundle(tmp_path)
    code = inspect_model(
        ["calibrate", "--model", str(model), "--video", str(line), "--target-recall", "0.5", "--write"]
    )
    assert code == 0
    out = capsys.readouterr().out
    card = json.loads(model.with_suffix(".json").read_text())
    assert card["thresholds"]["source"].startswith("line calibration:")
    assert card["thresholds"]["target_recall"] == 0.5
    assert f"{card['thresholds']['defect']:.4f}" in out
    recall = float(out.split("gives recall ")[1].split()[0])
    assert recall >= 0.5
    # Per kind: every inspected part counted once, good parts reported as false alarms.
    parts = int(out.split(" parts (")[0].split()[-1])
    rows = [line.split() for line in out.splitlines() if line.endswith(("flagged", "alarms)"))]
    kinds = {words[0]: words for words in rows}
    assert "good" in kinds and kinds["good"][-2:] == ["(false", "alarms)"]
    assert len(kinds) >= 2 and sum(int(words[3]) for words in kinds.values()) == parts


def test_calibrate_without_defects_on_the_line_is_a_data_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    video = tmp_path / "all-good"
    generate_video(
        video, LineSpec(width=640, height=360, duration=5, seed=22, defect_ratio=0.0), progress=False
    )
    model = _bundle(tmp_path)
    assert inspect_model(["calibrate", "--model", str(model), "--video", str(video)]) == 65
    assert "both good and defective" in capsys.readouterr().err
