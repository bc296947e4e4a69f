"""``inspect-agent bench-pipeline``: the whole agent against its ceilings and the naive loop, in one run.

    inspect-agent bench-pipeline --model models/demo/parts_int8.tflite \\
        --resolution 1280x720 --resolution 640x480 --resolution 1920x1080 --out pipeline.json

Per source (a generated MJPG line video per ``--resolution``, or ``--video`` files) and model:

- ceilings, measured alone in every round: decoding the video (OpenCV, one thread; and the cheaper JPEG
  decodes of an MJPG video) and invoking the model;
- the agent (``inspect-agent run``: grabber thread -> continuous trigger on the belt ROI -> model ->
  decision -> result on a real local mosquitto, NG events through the outbox), the file read as fast as it
  decodes, every frame inspected;
- the naive loop (:mod:`agent.bench_naive`) on the same file;

alternating agent and naive runs for ``--rounds`` rounds so the machine's noise hits both, medians
reported. Then a paced run (the file at ``--paced-fps``, below capacity) for capture-to-publish latency,
and the start-up split (imports, model load; the runs give process start -> first verdict).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import cv2

from agent.bench import DecodeResult, InvokeResult, decode_ceiling, invoke_ceiling, jpeg_decode_variants
from agent.bench_process import (
    Listener,
    MeasuredProcess,
    RunFigures,
    figures,
    published_results,
    python_module,
    write_agent_config,
)
from agent.demo_broker import LocalBroker
from agent.status import ExitStatus, InspectError

__all__ = [
    "Source",
    "line_source",
    "run_agent",
    "run_agent_process",
    "run_naive",
    "run_pipeline_bench",
    "source_of",
]

_RUN_TIMEOUT_S = 300.0


@dataclass(frozen=True)
class Source:
    video: Path
    width: int
    height: int
    frames: int
    roi: tuple[int, int, int, int]  # the belt of a generated line video, else the whole frame


def source_of(video: Path) -> Source:
    """A video file and its ROI: the belt from ``line.json`` beside it (``synth --video``), else the frame."""
    capture = cv2.VideoCapture(str(video), cv2.CAP_FFMPEG)
    if not capture.isOpened():
        raise InspectError(f"cannot open video {video}", ExitStatus.NO_INPUT)
    width, height = int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)), int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
    frames = 0
    while capture.grab():  # the header's frame count can be wrong; count what decodes
        frames += 1
    capture.release()
    if frames == 0:
        raise InspectError(f"no frame could be decoded from {video}", ExitStatus.DATA_ERROR)
    meta = video.with_name("line.json")
    roi = (0, 0, width, height)
    if meta.is_file():
        from agent.demo_report import belt_roi

        roi = belt_roi(json.loads(meta.read_text()))
    return Source(video, width, height, frames, roi)


def line_source(workdir: Path, width: int, height: int, seconds: float) -> Source:
    """A generated line video (``inspect-model synth --video``) of this size, made once and reused."""
    folder = workdir / f"line-{width}x{height}-{seconds:g}s"
    video = folder / "line.avi"
    if not video.is_file():
        from tools.synth_video import LineSpec, generate_video

        generate_video(folder, LineSpec(width=width, height=height, duration=seconds, seed=1), progress=False)
    return source_of(video)


def _agent_stages(stats: dict[str, Any] | None) -> dict[str, dict[str, float]]:
    if not stats:
        return {}
    return {
        k: {"p50": v["p50"], "p99": v["p99"], "count": v["count"]} for k, v in stats["latency_ms"].items()
    }


def run_agent_process(
    workdir: Path,
    listener: Listener,
    port: int,
    source: Source,
    model: Path,
    threads: int,
    tag: str,
    *,
    paced_fps: float | None = None,
    frames: int | None = None,
    seconds: float | None = None,
    loop: bool = False,
    every_s: float = 0.05,
    tree: Path | None = None,
    reduce: int = 1,
) -> tuple[MeasuredProcess, Any]:
    """``inspect-agent run`` on the source until it ends, or (paced at ``paced_fps``) until ``frames``
    results have arrived or ``seconds`` have passed since the first; then SIGTERM, and its closing stats.

    ``tree``: run the ``agent`` package of that checkout instead (PYTHONPATH), for before/after runs."""
    listener.reset()
    config = write_agent_config(
        workdir / f"{tag}.yaml", port, source.video, source.roi, model, threads, device=tag,
        realtime=paced_fps is not None, fps=paced_fps, loop=loop, reduce=reduce,
    )  # fmt: skip
    argv = python_module("agent.cli", "run", str(config))
    env = None if tree is None else {"PYTHONPATH": str(tree.resolve())}
    process = MeasuredProcess(argv, workdir / f"{tag}.log", every_s, env)
    limit = _RUN_TIMEOUT_S if seconds is None else seconds + _RUN_TIMEOUT_S
    if frames is not None:
        code = process.wait(limit, lambda: listener.result_count() >= frames)
    elif seconds is not None:
        code = process.wait(limit, lambda: _running_for(listener) >= seconds)
    else:
        code = process.wait(limit)
    if code != 0:
        tail = process.log.read_text(errors="replace")[-600:]
        raise InspectError(f"the agent exited with {code}: {tail}", ExitStatus.FAILURE)
    return process, _settle(listener, lambda box: box.stats is not None)


def _running_for(listener: Listener) -> float:
    """Seconds since the first result arrived (0 before): a soak's length excludes the start-up."""
    results = listener.take().results
    return time.monotonic() - results[0].mono if results else 0.0


def run_agent(
    workdir: Path,
    listener: Listener,
    port: int,
    source: Source,
    model: Path,
    threads: int,
    tag: str,
    paced_fps: float | None = None,
    frames: int | None = None,
    tree: Path | None = None,
    reduce: int = 1,
) -> RunFigures:
    process, inbox = run_agent_process(
        workdir, listener, port, source, model, threads, tag, paced_fps=paced_fps, frames=frames, tree=tree,
        reduce=reduce,
    )  # fmt: skip
    program = "agent" if tree is None else "baseline"
    published, unsent = published_results(inbox.stats)
    stages = _agent_stages(inbox.stats)
    frames_in = frames or source.frames
    return figures(program, threads, frames_in, published, process, inbox.results, stages, unsent)


def run_naive(
    workdir: Path, listener: Listener, port: int, source: Source, model: Path, threads: int, tag: str
) -> RunFigures:
    listener.reset()
    roi = ",".join(str(v) for v in source.roi)
    argv = python_module(
        "agent.bench_naive", "--video", str(source.video), "--model", str(model), "--threads", str(threads),
        "--roi", roi, "--port", str(port), "--device", tag,
    )  # fmt: skip
    process = MeasuredProcess(argv, workdir / f"{tag}.log")
    code = process.wait(_RUN_TIMEOUT_S)
    if code != 0:
        tail = process.log.read_text(errors="replace")[-600:]
        raise InspectError(f"the naive loop exited with {code}: {tail}", ExitStatus.FAILURE)
    inbox = _settle(listener, lambda box: box.summary is not None)
    stages = inbox.summary["stages_ms"] if inbox.summary else {}
    published = int(inbox.summary["frames"]) if inbox.summary else -1
    return figures("naive", threads, source.frames, published, process, inbox.results, stages)


def _settle(listener: Listener, done: Any, timeout: float = 5.0) -> Any:
    """The inbox once its closing message has arrived (the broker may still be delivering)."""
    deadline = time.monotonic() + timeout
    while not done(listener.take()) and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.1)  # QoS 0 results published before the closing QoS 1 message are delivered before it
    return listener.take()


def startup_split(model: Path, threads: int) -> dict[str, float]:
    """A fresh interpreter: seconds to import the agent's modules and to load the model bundle."""
    code = (
        "import json, time; t0 = time.perf_counter()\n"
        "import agent.service, agent.cli; t1 = time.perf_counter()\n"
        "from pathlib import Path; from agent.bundle import load_bundle\n"
        f"load_bundle(Path({str(model)!r}), {threads}); t2 = time.perf_counter()\n"
        "print(json.dumps({'import_s': t1 - t0, 'model_load_s': t2 - t1}))\n"
    )
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    split: dict[str, float] = json.loads(done.stdout)
    split["interpreter_start_s"] = time.monotonic() - started - split["import_s"] - split["model_load_s"]
    return split


def _median_row(runs: list[RunFigures]) -> dict[str, Any]:
    keys = ("fps", "cpu_percent", "rss_mb", "startup_s", "latency_p50_ms", "latency_p99_ms")
    row: dict[str, Any] = {"program": runs[0].program, "threads": runs[0].threads, "runs": len(runs)}
    row.update({k: statistics.median(getattr(r, k) for r in runs) for k in keys})
    # CPU time per frame: how much work a frame costs, which the machine's other load hardly changes.
    row["cpu_ms_per_frame"] = statistics.median(10 * r.cpu_percent / max(r.fps, 1e-6) for r in runs)
    return row


class _Ceilings:
    """Decode (as the agent decodes, and the cheaper JPEG decodes) and invoke alone, once per round."""

    def __init__(self) -> None:
        self.rounds: list[dict[str, Any]] = []

    def measure(self, video: Path, model: Path, threads: list[int]) -> None:
        self.rounds.append(
            {
                "decode": asdict(decode_ceiling(video, 150)),
                "decode_variants": [asdict(v) for v in jpeg_decode_variants(video, 150)],
                "invoke": [asdict(r) for r in invoke_ceiling([model], threads, 200)],
            }
        )

    def medians(self) -> tuple[DecodeResult, dict[str, DecodeResult], dict[int, InvokeResult]]:
        """Per ceiling, the round with the median rate (a real measurement, not a blend of several)."""

        def median_of(rows: list[dict[str, Any]]) -> dict[str, Any]:
            ranked = sorted(rows, key=lambda row: row["per_second"])
            return ranked[(len(ranked) - 1) // 2]

        decode = DecodeResult(**median_of([r["decode"] for r in self.rounds]))
        modes = [v["mode"] for v in self.rounds[0]["decode_variants"]]
        variants = {
            mode: DecodeResult(
                **median_of([v for r in self.rounds for v in r["decode_variants"] if v["mode"] == mode])
            )
            for mode in modes
        }
        counts = [r["threads"] for r in self.rounds[0]["invoke"]]
        invoke = {
            n: InvokeResult(**median_of([i for r in self.rounds for i in r["invoke"] if i["threads"] == n]))
            for n in counts
        }
        return decode, variants, invoke


def _is_mjpg(video: Path) -> bool:
    return bool(jpeg_decode_variants(video, 1))


def compare(
    workdir: Path,
    listener: Listener,
    port: int,
    source: Source,
    model: Path,
    threads: list[int],
    rounds: int,
    baseline: Path | None = None,
    reduce: int = 1,
) -> dict[str, Any]:
    """Ceilings, then the programs' runs alternated, order flipped every round: the agent, the naive loop,
    the baseline agent (``baseline``) and the agent decoding at 1/``reduce`` size (``agent-reduce<N>``)."""
    ceilings = _Ceilings()
    programs = ["agent", "naive"] + (["baseline"] if baseline else [])
    reduced = f"agent-reduce{reduce}"
    if reduce > 1:
        if not _is_mjpg(source.video):
            raise InspectError(f"--reduce needs an MJPG video: {source.video}", ExitStatus.USAGE)
        programs.append(reduced)
    runs: list[RunFigures] = []
    name = f"{source.width}x{source.height}-{model.stem}"
    for k in range(rounds):
        ceilings.measure(source.video, model, threads)  # every round: the load drifts, the ratios should not
        order = programs if k % 2 == 0 else programs[::-1]
        for n in threads:
            for program in order:
                tag = f"{program}-{name}-t{n}-r{k}".replace(".", "_")
                if program == "naive":
                    run = run_naive(workdir, listener, port, source, model, n, tag)
                else:
                    tree = baseline if program == "baseline" else None
                    r = reduce if program == reduced else 1
                    run = run_agent(workdir, listener, port, source, model, n, tag, tree=tree, reduce=r)
                    run = replace(run, program=program)
                runs.append(run)
                print(
                    f"  {program:<14} {name} threads {n} round {k + 1}: {run.fps:.0f} frames/s, "
                    f"{run.results}/{run.frames_in} results",
                    flush=True,
                )
    summary = [
        _median_row([r for r in runs if (r.program, r.threads) == (p, n)]) for n in threads for p in programs
    ]
    decode, variants, invoke = ceilings.medians()
    for row in summary:
        # A cheaper decode raises the ceiling itself: the reduced agent is held to the reduced decode.
        decode_fps = variants[f"imdecode-reduced-{reduce}"].per_second if row["program"] == reduced else None
        ceiling = min(decode_fps or decode.per_second, invoke[row["threads"]].per_second)
        row["ceiling_fps"] = ceiling
        row["vs_ceiling"] = row["fps"] / ceiling
        naive = next(r for r in summary if (r["program"], r["threads"]) == ("naive", row["threads"]))
        row["vs_naive"] = row["fps"] / naive["fps"]
    return {
        "video": str(source.video),
        "width": source.width,
        "height": source.height,
        "frames": source.frames,
        "roi": list(source.roi),
        "model": str(model),
        "ceilings": {  # medians over the rounds; each round's own in "ceilings_per_round"
            "decode": asdict(decode),
            "decode_variants": [asdict(v) for v in variants.values()],
            "invoke": [asdict(r) for r in invoke.values()],
        },
        "ceilings_per_round": ceilings.rounds,
        "runs": [asdict(r) for r in runs],
        "summary": summary,
    }


def _print_table(cases: list[dict[str, Any]]) -> None:
    head = f"{'source':<10} {'model':<22} {'program':<14} {'thr':>3} {'fps':>6} {'ceiling':>7} {'vs ceil':>7}"
    print(head + f" {'vs naive':>8} {'CPU %':>6} {'CPU ms/f':>8} {'RSS MB':>7} {'p50 ms':>7} {'p99 ms':>7}")
    for case in cases:
        for row in case["summary"]:
            size = f"{case['width']}x{case['height']}"
            print(
                f"{size:<10} {Path(case['model']).stem[:22]:<22} {row['program']:<14} {row['threads']:>3} "
                f"{row['fps']:>6.0f} {row['ceiling_fps']:>7.0f} {row['vs_ceiling']:>6.2f}x "
                f"{row['vs_naive']:>7.2f}x {row['cpu_percent']:>6.0f} {row['cpu_ms_per_frame']:>8.2f} "
                f"{row['rss_mb']:>7.0f} "
                f"{row['latency_p50_ms']:>7.1f} {row['latency_p99_ms']:>7.1f}"
            )


def run_pipeline_bench(
    models: list[Path],
    sources: list[Source],
    threads: list[int],
    rounds: int,
    paced_fps: float,
    paced_frames: int,
    workdir: Path,
    out: Path | None,
    baseline: Path | None = None,
    reduce: int = 1,
) -> int:
    workdir.mkdir(parents=True, exist_ok=True)
    cases = []
    with LocalBroker(workdir / "broker") as broker:
        listener = Listener(broker.host, broker.port)
        try:
            for source in sources:
                for model in models:
                    cases.append(
                        compare(
                            workdir, listener, broker.port, source, model, threads, rounds, baseline, reduce
                        )
                    )
            paced = None
            if paced_fps > 0:
                n = max(threads)
                source, model = sources[0], models[0]
                frames = min(paced_frames, source.frames)
                paced = run_agent(workdir, listener, broker.port, source, model, n, "agent-paced", paced_fps,
                                  frames)  # fmt: skip
        finally:
            listener.close()
    startup = startup_split(models[0], max(threads))
    _print_table(cases)
    if paced:
        invoke = cases[0]["ceilings"]["invoke"]
        invoke_p50 = next(r["p50_ms"] for r in invoke if r["threads"] == paced.threads)
        print(
            f"paced at {paced_fps:g} frames/s ({paced.results} frames): capture-to-publish p50 "
            f"{paced.latency_p50_ms:.1f} ms, p99 {paced.latency_p99_ms:.1f} ms "
            f"(invoke alone p50 {invoke_p50:.2f} ms)"
        )
    first_verdict = statistics.median(  # the agent of this tree only
        r["startup_s"] for c in cases for r in c["runs"] if r["program"] == "agent"
    )
    print(
        f"start-up: process start -> first verdict {first_verdict:.2f} s (median of the agent runs); "
        f"imports {startup['import_s']:.2f} s, model load {startup['model_load_s']:.3f} s"
    )
    if out:
        payload = {
            "machine": {"cpus": os.cpu_count(), "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())},
            "cases": cases,
            "paced": asdict(paced) | {"fps_in": paced_fps} if paced else None,
            "startup": startup | {"first_verdict_s": first_verdict},
        }
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(payload, indent=2) + "\n")
        print(f"wrote {out}")
    return int(ExitStatus.OK)
