"""``inspect-agent bench-pipeline`` and ``bench-soak`` on a tiny line video with a real mosquitto.

The benchmarks start their own broker (agent.demo_broker) and spawn the real agent and the naive loop.
These tests check that the counts add up (every frame inspected, every published result received) and
that the JSON holds what the docs quote; never how fast anything was.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from agent.bench_process import proc_sample
from agent.cli import main
from agent.demo_broker import find_mosquitto
from tests.agent_harness import DEMO_MODEL, ROOT
from tools.synth_video import LineSpec, generate_video

pytestmark = pytest.mark.skipif(find_mosquitto() is None, reason="mosquitto not installed")

_FRAMES = 24  # 0.8 s at 30 fps


@pytest.fixture(scope="module")
def line_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("line") / "line"
    generate_video(folder, LineSpec(width=320, height=180, duration=0.8, seed=3), progress=False)
    return folder / "line.avi"


def test_pipeline_bench_counts_every_frame_and_result(
    line_video: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "pipeline.json"
    argv = ["bench-pipeline", "--model", str(DEMO_MODEL), "--video", str(line_video), "--threads", "1"]
    argv += ["--rounds", "1", "--paced-fps", "60", "--paced-frames", "12", "--workdir", str(tmp_path / "w")]
    assert main([*argv, "--baseline", str(ROOT), "--reduce", "2", "--out", str(out)]) == 0
    result = json.loads(out.read_text())

    (case,) = result["cases"]
    assert (case["width"], case["height"], case["frames"]) == (320, 180, _FRAMES)
    meta = json.loads(line_video.with_name("line.json").read_text())
    assert case["roi"] == [0, meta["belt_y0"], 320, meta["belt_y1"] - meta["belt_y0"]]  # the belt
    assert case["ceilings"]["decode"]["width"] == 320
    assert [r["threads"] for r in case["ceilings"]["invoke"]] == [1]
    runs = case["runs"]
    assert sorted(r["program"] for r in runs) == ["agent", "agent-reduce2", "baseline", "naive"]
    for run in runs:  # continuous trigger, file read to the end: one result per frame, all received
        # (a QoS 0 result published before the agent's first connection is dropped, and counted as unsent)
        assert run["frames_in"] == run["published"] == run["results"] + run["unsent"] == _FRAMES, run
        assert run["unsent"] <= 3, run
        assert run["fps"] > 0 and run["cpu_percent"] > 0 and run["rss_mb"] > 10
        assert 0 < run["latency_p50_ms"] <= run["latency_p99_ms"]
    agent = next(r for r in runs if r["program"] == "agent")
    assert agent["stages_ms"]["inference"]["count"] == _FRAMES
    assert agent["stages_ms"]["capture_to_result"]["count"] == _FRAMES
    naive = next(r for r in runs if r["program"] == "naive")
    assert set(naive["stages_ms"]) == {"read", "preprocess", "invoke", "publish"}
    assert all(stage["count"] == _FRAMES for stage in naive["stages_ms"].values())

    rows = {row["program"]: row for row in case["summary"]}
    assert rows["naive"]["vs_naive"] == 1.0
    ceilings = case["ceilings"]
    invoke = ceilings["invoke"][0]["per_second"]
    reduced = next(v for v in ceilings["decode_variants"] if v["mode"] == "imdecode-reduced-2")
    for program, row in rows.items():  # the reduced decode is its own ceiling
        decode = reduced if program == "agent-reduce2" else ceilings["decode"]
        assert row["ceiling_fps"] == pytest.approx(min(decode["per_second"], invoke))
        assert row["vs_ceiling"] == pytest.approx(row["fps"] / row["ceiling_fps"])

    paced = result["paced"]
    assert paced["program"] == "agent" and paced["fps_in"] == 60
    assert paced["results"] >= 12 and paced["published"] == paced["results"] + paced["unsent"]
    startup = result["startup"]
    assert startup["first_verdict_s"] > 0 and startup["import_s"] > 0 and startup["model_load_s"] > 0

    table = capsys.readouterr().out
    assert "320x180" in table and "baseline" in table and "start-up:" in table


def test_soak_samples_memory_and_fds_and_plots(line_video: Path, tmp_path: Path) -> None:
    out, plot = tmp_path / "soak.json", tmp_path / "soak.png"
    argv = ["bench-soak", "--model", str(DEMO_MODEL), "--video", str(line_video), "--minutes", "0.06"]
    argv += ["--fps", "30", "--threads", "1", "--every", "0.2", "--workdir", str(tmp_path / "w")]
    assert main([*argv, "--out", str(out), "--plot", str(plot)]) == 0
    result = json.loads(out.read_text())
    soak = result["soak"]
    assert soak["fps_in"] == 30 and soak["results"] > 0
    assert soak["results"] + soak["unsent"] == soak["published"]  # every result sent was received
    assert soak["rss_start_mb"] > 10 and soak["fds_start"] > 3
    assert soak["rss_growth_mb"] == pytest.approx(soak["rss_end_mb"] - soak["rss_start_mb"])
    assert soak["rss_first_minute_mb"] > 10 and soak["rss_last_minute_mb"] > 10
    samples = result["samples"]
    assert len(samples) >= 5 and [s["t_s"] for s in samples] == sorted(s["t_s"] for s in samples)
    assert "capture_to_result" in result["stages_ms"]
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_proc_sample_reads_a_live_process_and_none_once_it_is_gone() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; x = bytearray(50 << 20); time.sleep(30)"])
    try:
        deadline = time.monotonic() + 20
        sample = proc_sample(child.pid)
        while sample is not None and sample.rss_mb < 50 and time.monotonic() < deadline:
            time.sleep(0.05)
            sample = proc_sample(child.pid)
        assert sample is not None and sample.rss_mb >= 50 and sample.fds >= 3 and sample.cpu_s >= 0
    finally:
        child.kill()
        child.wait(5)
    assert proc_sample(child.pid) is None
    assert proc_sample(os.getpid()) is not None


@pytest.mark.parametrize("bad", [["--resolution", "1280by720"], ["--roi", "0,40,1280"], ["--reduce", "3"]])
def test_pipeline_bench_bad_arguments_are_usage_errors(bad: list[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["bench-pipeline", "--model", str(DEMO_MODEL), *bad])
    assert info.value.code == 2
