"""Demo report: results matched to line ground truth, the confusion counts, and the written report."""

from __future__ import annotations

import html
import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest

from agent.demo_report import LineTruth, match_results, summarise, write_report

SPEED = 10.0  # px per frame; every part is 100 px and, unless cut by the edge, at x = 320 at its centre_frame


def _part(pid: int, label: str, centre_frame: int, enter: int, exit_: int, x0: int = 270) -> dict[str, Any]:
    return {
        "id": pid, "label": label, "part": "disc", "enter_frame": enter, "exit_frame": exit_,
        "center_frame": centre_frame, "box_at_center": [x0, 130, x0 + 100, 230], "y_center": 180.0,
        "x_at_frame0": x0 + 50 - SPEED * centre_frame,
    }  # fmt: skip


TRUTH = LineTruth(
    parts=[
        _part(0, "good", 30, 0, 60),
        _part(1, "scratch", 50, 5, 80),
        _part(2, "dent", 70, 25, 99),
        _part(3, "good", 90, 45, 99),
        _part(4, "good", 99, 55, 99),  # centred on the last frame: not expected
        _part(5, "good", 80, 35, 99),  # expected, never inspected
        _part(6, "spot", 10, 0, 15, x0=0),  # at x = 50, cut by the frame edge, at its centre: not expected
    ],
    speed_px_per_frame=SPEED,
    frame_count=100,
    width=640,
)


def _result(seq: int, frame: int | None, cx: float | None, verdict: str = "OK") -> dict[str, Any]:
    box = None if cx is None else [cx - 50, 130, 100, 100]
    return {"seq": seq, "verdict": verdict, "latency_ms": float(seq + 1), "part_box": box,
            "frame": {"source_pos": frame}}  # fmt: skip


RESULTS = [
    _result(0, 30, 320, "OK"),  # part 0, good, said OK: true OK
    _result(1, 50, 322, "NG"),  # part 1, scratch, said NG: true NG
    _result(2, 52, 340, "NG"),  # part 1 again two frames later: a duplicate
    _result(3, 70, 318, "OK"),  # part 2, dent, said OK: missed NG
    _result(4, 90, 320, "NG"),  # part 3, good, said NG: false NG
    _result(5, 40, 600, "NG"),  # nothing at x = 600 on frame 40: unmatched
    _result(6, 40, None, "OK"),  # no part box (not presence mode): unmatched
    _result(7, None, 320, "OK"),  # no source position: unmatched
    _result(8, 99, 320, "OK"),  # part 4: a true OK, though part 4 is not in the expected set
]


@pytest.mark.parametrize(
    ("frame", "cx", "expected"),
    [
        (30, 320.0, 0),  # part 0 centred
        (30, 369.0, 0),  # 49 px off: still inside half the part's size
        (30, 371.0, None),  # 51 px off: too far
        (50, 520.0, 0),  # part 0 has moved on 200 px by frame 50
        (50, 320.0, 1),  # and part 1 is now at the centre
        (61, 630.0, None),  # where part 0 would be, but it left the frame after frame 60
        (-1, 320.0, None),  # a source without frame numbers
    ],
)
def test_match_results_by_position_at_the_frame(frame: int, cx: float, expected: int | None) -> None:
    assert match_results([_result(0, frame, cx)], TRUTH) == [expected]


def test_match_results_table() -> None:
    assert match_results(RESULTS, TRUTH) == [0, 1, 1, 2, 3, None, None, None, 4]


def test_expected_parts() -> None:
    assert [p["id"] for p in TRUTH.expected()] == [0, 1, 2, 3, 5]


def test_summarise_counts() -> None:
    events = [{"seq": 1}, {"seq": 2}, {"seq": 4}, {"seq": 5}]
    s = summarise(RESULTS, events, TRUTH)
    assert (s.parts_expected, s.parts_inspected, s.parts_missed) == (5, 4, 1)
    assert (s.duplicate_verdicts, s.unmatched_verdicts) == (1, 3)
    assert (s.true_ng, s.false_ng, s.missed_ng, s.true_ok) == (1, 1, 1, 2)
    assert (s.ng_precision, s.ng_recall, s.accuracy) == (0.5, 0.5, 0.6)
    assert s.events == 4
    assert (s.latency_ms_p50, s.latency_ms_p99) == (5.0, pytest.approx(8.92))  # latencies 1..9


@pytest.mark.parametrize(
    ("results", "precision", "recall", "accuracy"),
    [
        ([], None, None, None),  # nothing decided: no ratios, not a division by zero
        ([_result(0, 30, 320, "OK")], None, None, 1.0),  # one good part passed: no NG either way
        ([_result(0, 50, 320, "NG")], 1.0, 1.0, 1.0),  # the one defect caught
        ([_result(0, 50, 320, "OK")], None, 0.0, 0.0),  # the one defect missed
    ],
)
def test_summarise_ratios(
    results: list[dict[str, Any]], precision: float | None, recall: float | None, accuracy: float | None
) -> None:
    s = summarise(results, [], TRUTH)
    assert (s.ng_precision, s.ng_recall, s.accuracy) == (precision, recall, accuracy)
    if not results:
        assert (s.latency_ms_p50, s.latency_ms_p99, s.parts_missed) == (None, None, 5)


def test_write_report(tmp_path: Path) -> None:
    events = [
        {"seq": 1, "event_id": "ev-0001", "label": "scratch", "defect_score": 0.91, "threshold": 0.5,
         "images": [{"kind": "annotated"}, {"kind": "crop"}]},  # a real defect
        {"seq": 4, "event_id": "ev-<0004>", "label": "dent", "defect_score": 0.66, "threshold": 0.5,
         "images": []},  # a good part flagged; the id needs escaping
        {"seq": 5, "event_id": "ev-0005", "label": "dent", "defect_score": 0.7, "threshold": 0.5,
         "images": [{"kind": "annotated"}]},  # no part there
    ]  # fmt: skip
    summary = summarise(RESULTS, events, TRUTH)
    path = write_report(tmp_path, summary, RESULTS, events, TRUTH, {"video": "line.avi"})
    assert path == tmp_path / "report.html"
    data = json.loads((tmp_path / "summary.json").read_text())
    assert data == {**asdict(summary), "video": "line.avi"}
    page = path.read_text()
    for event in events:
        assert html.escape(str(event["event_id"])) in page
    assert "ev-<0004>" not in page
    assert page.count('class="hit"') == 1 and page.count('class="miss"') == 2
    assert 'src="images/ev-0001.jpg"' in page and 'src="images/ev-0005.jpg"' in page
    assert "truth: scratch" in page and "truth: good" in page and "truth: no part" in page
    assert "0.91 &gt; 0.50" in page
