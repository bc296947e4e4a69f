"""``inspect-agent bench-soak``: the agent for N minutes at a fixed frame rate; do its memory and fds hold?

    inspect-agent bench-soak --model models/demo/parts_int8.tflite --minutes 10 --fps 30 \\
        --out benchmarks/results/soak.json --plot benchmarks/results/soak.png

The agent (``inspect-agent run``) reads a generated 1280x720 line video looped and paced at ``--fps``,
continuous trigger on the belt ROI, results to a local mosquitto. Its RSS, open fds and CPU are read from
``/proc`` every ``--every`` seconds; start (30 s after the first result, warmed up) and end values, the
growth, the results received against the frames sent and the capture-to-publish latency are reported.
"""

from __future__ import annotations

import json
import statistics
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from agent.bench_pipeline import Source, run_agent_process
from agent.bench_process import Listener, ProcSample, figures, published_results
from agent.demo_broker import LocalBroker
from agent.status import ExitStatus, InspectError

__all__ = ["SoakResult", "run_soak"]


@dataclass(frozen=True)
class SoakResult:
    minutes: float
    fps_in: float
    published: int  # results the agent published (its closing stats)
    unsent: int  # of those, not sent: QoS 0 before the first connection (counted by the agent)
    results: int  # results received by the benchmark's subscriber
    rss_start_mb: float
    rss_end_mb: float
    rss_growth_mb: float
    rss_first_minute_mb: float  # median over the minute after the start (one sample is noisy)
    rss_last_minute_mb: float  # median over the last minute
    fds_start: int
    fds_end: int
    cpu_percent: float  # mean over the soak, 100 = one core
    latency_p50_ms: float  # capture -> result received
    latency_p99_ms: float


def _sample_row(sample: ProcSample, t0: float) -> dict[str, float]:
    return {"t_s": round(sample.mono - t0, 2), "rss_mb": round(sample.rss_mb, 2), "fds": sample.fds,
            "cpu_s": round(sample.cpu_s, 2)}  # fmt: skip


def _plot(samples: list[ProcSample], t0: float, path: Path) -> None:
    try:
        import matplotlib
    except ImportError:
        raise InspectError(
            "--plot needs matplotlib (pip install matplotlib; the results JSON is written)",
            ExitStatus.UNAVAILABLE,
        ) from None

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    minutes = [(s.mono - t0) / 60 for s in samples]
    fig, (rss, fds) = plt.subplots(2, 1, figsize=(8, 5), sharex=True)
    rss.plot(minutes, [s.rss_mb for s in samples])
    rss.set_ylabel("RSS (MB)")
    rss.set_ylim(bottom=0)
    fds.plot(minutes, [s.fds for s in samples], color="tab:orange")
    fds.set_ylabel("open fds")
    fds.set_ylim(bottom=0)
    fds.set_xlabel("minutes since the agent started")
    rss.set_title("inspect-agent soak: RSS and open file descriptors")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def run_soak(
    model: Path,
    source: Source,
    minutes: float,
    fps: float,
    threads: int,
    every_s: float,
    workdir: Path,
    out: Path | None,
    plot: Path | None,
) -> int:
    workdir.mkdir(parents=True, exist_ok=True)
    with LocalBroker(workdir / "broker") as broker:
        listener = Listener(broker.host, broker.port)
        try:
            process, inbox = run_agent_process(
                workdir, listener, broker.port, source, model, threads, "agent-soak",
                paced_fps=fps, seconds=minutes * 60, loop=True, every_s=every_s,
            )  # fmt: skip
        finally:
            listener.close()
    published, unsent = published_results(inbox.stats)
    run = figures("agent", threads, published, published, process, inbox.results, {}, unsent)
    samples = process.samples
    # Start: once warmed up (the interpreter's first invokes, the first event's JPEG encoder, paho's
    # buffers allocate), 30 s or a tenth of the soak after the first result, whichever is shorter.
    warm = inbox.results[0].mono + min(30.0, minutes * 6)
    start = next((s for s in samples if s.mono >= warm), samples[0])
    end = samples[-1]
    result = SoakResult(
        minutes=(end.mono - start.mono) / 60,
        fps_in=fps,
        published=published,
        unsent=unsent,
        results=run.results,
        rss_start_mb=start.rss_mb,
        rss_end_mb=end.rss_mb,
        rss_growth_mb=end.rss_mb - start.rss_mb,
        rss_first_minute_mb=statistics.median(
            s.rss_mb for s in samples if start.mono <= s.mono <= start.mono + 60
        ),
        rss_last_minute_mb=statistics.median(s.rss_mb for s in samples if s.mono >= end.mono - 60),
        fds_start=start.fds,
        fds_end=end.fds,
        cpu_percent=100 * (end.cpu_s - start.cpu_s) / max(end.mono - start.mono, 1e-6),
        latency_p50_ms=run.latency_p50_ms,
        latency_p99_ms=run.latency_p99_ms,
    )
    print(
        f"soak {result.minutes:.1f} min at {fps:g} frames/s: {result.results}/{published} results in; RSS "
        f"{result.rss_start_mb:.1f} -> {result.rss_end_mb:.1f} MB ({result.rss_growth_mb:+.1f}; first/last "
        f"minute medians {result.rss_first_minute_mb:.1f} -> {result.rss_last_minute_mb:.1f}), fds "
        f"{result.fds_start} -> {result.fds_end}, CPU {result.cpu_percent:.0f} %, capture-to-publish p50 "
        f"{result.latency_p50_ms:.1f} ms, p99 {result.latency_p99_ms:.1f} ms"
    )
    if out:
        payload = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "video": str(source.video),
            "model": str(model),
            "threads": threads,
            "soak": asdict(result),
            "samples": [
                {
                    "t_s": round(s.mono - process.spawned, 2),
                    "rss_mb": round(s.rss_mb, 2),
                    "fds": s.fds,
                    "cpu_s": round(s.cpu_s, 2),
                }
                for s in samples
            ],
            "stages_ms": inbox.stats["latency_ms"] if inbox.stats else {},
        }
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(payload, indent=2) + "\n")
        print(f"wrote {out}")
    if plot:
        plot.parent.mkdir(parents=True, exist_ok=True)
        _plot(samples, process.spawned, plot)
        print(f"wrote {plot}")
    return int(ExitStatus.OK)
