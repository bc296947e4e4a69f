"""``inspect-agent bench`` on the bundled model and a generated video: the table, the ratios, the JSON."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agent.bench import jpeg_decode_variants
from agent.cli import main
from tests.agent_harness import DEMO_MODEL
from tools.synth_video import LineSpec, generate_video


def test_bench_writes_invoke_and_decode_results(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    generate_video(tmp_path / "line", LineSpec(width=320, height=180, duration=1, seed=1), progress=False)
    out = tmp_path / "bench.json"
    argv = ["bench", "--model", str(DEMO_MODEL), "--threads", "1,2", "--runs", "40"]
    assert main([*argv, "--video", str(tmp_path / "line/line.avi"), "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    assert [(r["threads"], r["runs"]) for r in result["invoke"]] == [(1, 40), (2, 40)]
    assert all(r["input"] == "uint8[1, 160, 160, 3]" and r["p50_ms"] > 0 for r in result["invoke"])
    assert result["decode"]["width"] == 320 and result["decode"]["frames"] == 40  # the 30-frame file loops
    variants = {v["mode"]: v for v in result["decode_variants"]}  # the same MJPG frames, cheaper decodes
    assert set(variants) == {"imdecode", "imdecode-gray", "imdecode-reduced-2", "imdecode-reduced-4"}
    sizes = {mode: (v["width"], v["height"], v["frames"]) for mode, v in variants.items()}
    assert sizes["imdecode"] == sizes["imdecode-gray"] == (320, 180, 40)
    assert sizes["imdecode-reduced-2"] == (160, 90, 40) and sizes["imdecode-reduced-4"] == (80, 45, 40)
    table = capsys.readouterr().out
    assert "1.00x" in table and "decode 320x180" in table


def test_no_jpeg_decode_variants_for_a_video_that_is_not_mjpg(tmp_path: Path) -> None:
    spec = LineSpec(width=160, height=96, duration=0.3, seed=1, fmt="mp4")
    generate_video(tmp_path / "line", spec, progress=False)
    assert jpeg_decode_variants(tmp_path / "line/line.mp4", 10) == []


def test_bench_on_a_missing_video_is_exit_66(tmp_path: Path) -> None:
    assert (
        main(["bench", "--model", str(DEMO_MODEL), "--threads", "1", "--runs", "5", "--video", "nope.avi"])
        == 66
    )
