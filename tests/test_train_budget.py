"""``train --time-budget``: the epoch plan follows measured epoch times, and the schedule follows the plan."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import cv2
import numpy as np
import pytest

from agent.status import ExitStatus
from tools.cli import main
from tools.train_budget import EpochClock, adjustable_cosine, finish_reserve_s, split_deadline


def test_the_plan_is_what_fits_in_the_time_left() -> None:
    clock = EpochClock(deadline=100.0, cap=50)
    assert clock.planned_epochs(now=0.0) == 50  # nothing measured yet: the cap
    clock.durations = [30.0, 10.0, 10.0]  # the first epoch traced the graph: it is left out
    assert clock.typical_epoch_s() == 10.0
    assert clock.planned_epochs(now=40.0) == 3 + 6
    assert clock.planned_epochs(now=99.0) == 3  # never fewer than those already run
    assert EpochClock(deadline=1e9, cap=7, durations=[1.0, 1.0]).planned_epochs(now=2.0) == 7


def test_a_machine_getting_busier_shrinks_the_plan() -> None:
    clock = EpochClock(deadline=200.0, cap=100, durations=[5.0, 5.0, 5.0, 5.0])
    before = clock.planned_epochs(now=20.0)
    clock.durations += [20.0, 20.0, 20.0]  # only the latest three count
    assert clock.typical_epoch_s() == 20.0
    assert clock.planned_epochs(now=80.0) < before


def test_the_map_phase_gets_its_share_of_the_time() -> None:
    assert split_deadline(now=10.0, deadline=150.0, map_epochs=2, epochs=5) == pytest.approx(50.0)
    assert split_deadline(now=10.0, deadline=150.0, map_epochs=0, epochs=5) == 10.0
    assert finish_reserve_s(15 * 60) == pytest.approx(45.0)
    assert finish_reserve_s(1.0) == 15.0 and finish_reserve_s(10 * 3600) == 90.0


def test_the_cosine_ends_where_the_plan_ends() -> None:
    schedule = adjustable_cosine(0.01, total_steps=100, alpha=0.05)
    assert float(schedule(0)) == pytest.approx(0.01)
    assert float(schedule(50)) == pytest.approx(0.01 * (0.05 + 0.95 * 0.5))
    assert float(schedule(100)) == pytest.approx(0.0005)
    assert float(schedule(500)) == pytest.approx(0.0005)  # stays at the floor past the horizon
    schedule.total_steps.assign(50.0)  # the plan shrank: step 50 is now the end
    assert float(schedule(50)) == pytest.approx(0.0005)


def _grey_set(root: Path) -> Path:
    """Good and scratched grey images, with synth-style masks so that the defect-map phase runs too."""
    (root / "masks" / "scratch").mkdir(parents=True)
    for label in ("good", "scratch"):
        (root / label).mkdir(parents=True)
        for i in range(8):
            image = np.full((40 + i, 60, 1), 90, np.uint8)
            if label == "scratch":
                mask = np.zeros_like(image)
                cv2.line(mask, (5, 5 + i), (50, 30), 255, 2)
                image[mask > 0] = 255
                cv2.imwrite(str(root / "masks" / label / f"{i}.png"), mask)
            cv2.imwrite(str(root / label / f"{i}.png"), image)
    return root


def _train(tmp_path: Path, *extra: str) -> int:
    data = tmp_path / "data"
    if not data.exists():
        _grey_set(data)
    argv = ["train", "--data", str(data), "--out", str(tmp_path / "run"), "--color", "gray"]
    return main([*argv, "--input-size", "32", "--width", "0.5", "--no-augment", *extra])


@pytest.mark.slow
def test_a_budget_that_is_gone_still_trains_one_epoch_and_says_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # 0.05 min is less than the time kept back for the export: the deadline has passed before the
    # first epoch. One epoch runs (there is no model otherwise), then the budget stops it.
    with caplog.at_level(logging.WARNING):
        assert _train(tmp_path, "--epochs", "40", "--time-budget", "0.05") == 0
    record = json.loads((tmp_path / "run" / "training.json").read_text())
    assert record["defect_map_supervision"] is True
    assert record["epochs_run"] == 1 and record["time_budget"]["map_epochs_run"] == 1
    assert record["time_budget"]["epochs_planned_last"] == 1
    assert record["time_budget"]["minutes"] == 0.05 and record["time_budget"]["typical_epoch_s"] > 0
    assert (tmp_path / "run" / "model.keras").is_file()
    assert any("--time-budget 0.05 min: passed by" in r.getMessage() for r in caplog.records)


@pytest.mark.slow
def test_a_budget_with_room_to_spare_runs_every_epoch(tmp_path: Path) -> None:
    assert _train(tmp_path, "--epochs", "3", "--time-budget", "60") == 0
    record = json.loads((tmp_path / "run" / "training.json").read_text())
    assert record["epochs_run"] == 3 and record["time_budget"]["epochs_planned_last"] == 3
    assert record["time_budget"]["map_epochs_run"] == record["args"]["map_epochs"] == 1  # 40 % of 3
    assert record["seconds"] < 60 * 60


@pytest.mark.slow
def test_without_a_budget_nothing_is_recorded(tmp_path: Path) -> None:
    assert _train(tmp_path, "--epochs", "1") == 0
    assert json.loads((tmp_path / "run" / "training.json").read_text())["time_budget"] is None


@pytest.mark.parametrize("extra", [["--time-budget", "0"], ["--time-budget", "5", "--task", "anomaly"]])
def test_a_budget_must_be_positive_and_for_classification(
    tmp_path: Path, extra: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert _train(tmp_path, *extra) == ExitStatus.USAGE
    assert "--time-budget takes a positive number of minutes" in capsys.readouterr().err
