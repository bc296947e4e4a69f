"""``inspect-agent``: the device program.

    inspect-agent run /etc/inspect-agent/config.yaml      # inspect until SIGTERM (or every source ended)
    inspect-agent check-config config.yaml               # validate the YAML without starting anything
    inspect-agent info models/parts_int8.tflite          # check a bundle loads and matches its card
    inspect-agent once models/parts_int8.tflite part.png # verdict per image, one JSON line each

Exit codes: 0 ok, 1 unexpected error, 2 usage, 65 bad model/data, 66 missing input,
69 no TFLite interpreter installed, 78 bad configuration.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

import cv2

from agent import __version__
from agent.bundle import load_bundle
from agent.status import ExitStatus, run_command

__all__ = ["build_parser", "main"]


def _info(args: argparse.Namespace) -> int:
    bundle = load_bundle(args.model, args.threads)
    card = bundle.card
    print(
        json.dumps(
            {
                "model": str(args.model),
                "name": card.name,
                "version": card.version,
                "quantization": card.quantization,
                "labels": card.labels,
                "good_label": card.good_label,
                "input": card.input.model_dump(mode="json"),
                "defect_threshold": card.thresholds.defect,
                "interpreter": bundle.model.backend,
                "threads": bundle.model.num_threads,
                "sha256": card.tflite_sha256,
            },
            indent=2,
        )
    )
    return int(ExitStatus.OK)


def _once(args: argparse.Namespace) -> int:
    bundle = load_bundle(args.model, args.threads)
    threshold = args.threshold if args.threshold is not None else bundle.card.thresholds.defect
    status = ExitStatus.OK
    for path in args.images:
        image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        if image is None:
            print(f"inspect-agent once: cannot read image {path}", file=sys.stderr)
            status = ExitStatus.NO_INPUT
            continue
        scores, _ = bundle.classify(image)
        verdict = "NG" if scores.defect_score > threshold else "OK"  # equal to the threshold is good
        record: dict[str, object] = {
            "image": str(path),
            "verdict": verdict,
            "label": scores.label,
            "score": round(scores.score, 4),
            "defect_score": round(scores.defect_score, 4),
            "threshold": threshold,
        }
        if bundle.detector is not None:  # boxes as [x, y, w, h] in the image's pixels
            record["detections"] = [
                {"label": d.label, "score": round(d.score, 4), "box": list(d.rect())}
                for d in scores.detections
            ]
        print(json.dumps(record))
    return int(status)


def _run(args: argparse.Namespace) -> int:
    from agent.config import load_config
    from agent.logs import setup_logging
    from agent.service import Agent

    config = load_config(args.config)
    setup_logging(args.log_level or config.logging.level, config.logging.format)
    agent = Agent(config, config_path=args.config)
    # SIGTERM (systemd stop) and SIGINT both end the run loop: current frames finish, queued
    # events are published, `available` goes offline, then exit 0.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: agent.request_stop())
    signal.signal(signal.SIGHUP, lambda *_: agent.request_reload())  # systemctl reload
    agent.start()
    return agent.run()


def _bench(args: argparse.Namespace) -> int:
    from agent.bench import run_bench

    threads = [int(t) for t in args.threads.split(",")] if args.threads else None
    return run_bench(args.model, threads, args.runs, args.video, args.out)


def _bench_pipeline(args: argparse.Namespace) -> int:
    from agent.bench_pipeline import line_source, run_pipeline_bench, source_of

    threads = [int(t) for t in args.threads.split(",")]
    sources = [source_of(v) for v in args.video or []]
    for width, height in args.resolution or ([] if sources else [(1280, 720)]):
        sources.append(line_source(args.workdir, width, height, args.seconds))
    if args.roi:
        sources = [dataclasses.replace(s, roi=args.roi) for s in sources]
    return run_pipeline_bench(
        args.model, sources, threads, args.rounds, args.paced_fps, args.paced_frames, args.workdir, args.out,
        args.baseline, args.reduce or 1,
    )  # fmt: skip


def _bench_soak(args: argparse.Namespace) -> int:
    from agent.bench_pipeline import line_source, source_of
    from agent.bench_soak import run_soak

    source = source_of(args.video) if args.video else line_source(args.workdir, 1280, 720, 20)
    return run_soak(
        args.model,
        source,
        args.minutes,
        args.fps,
        args.threads or os.cpu_count() or 1,
        args.every,
        args.workdir,
        args.out,
        args.plot,
    )


def _ints(text: str, separator: str, count: int, what: str) -> tuple[int, ...]:
    """``"1280x720"`` -> (1280, 720) for argparse ``type=``: a bad value is a usage error (exit 2)."""
    try:
        values = tuple(int(v) for v in text.split(separator))
    except ValueError:
        values = ()
    if len(values) != count or min(values) < 0:
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
    return values


def _resolution(text: str) -> tuple[int, ...]:
    return _ints(text, "x", 2, "WIDTHxHEIGHT like 1280x720")


def _roi(text: str) -> tuple[int, ...]:
    return _ints(text, ",", 4, "x,y,width,height like 0,40,1280,640")


def _check_config(args: argparse.Namespace) -> int:
    from agent.config import check_config_main

    return check_config_main(args.config)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="inspect-agent", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--traceback", action="store_true", help="print the full traceback on errors")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    info = sub.add_parser("info", help="load a model bundle, verify it against its card, print its spec")
    once = sub.add_parser("once", help="classify image files with a model bundle, one JSON line per image")
    for p in (info, once):
        p.add_argument("model", type=Path, help=".tflite file with its .json model card beside it")
        p.add_argument("--threads", type=int, help="interpreter threads (default: all cores)")
    once.add_argument("images", type=Path, nargs="+", help="image files (PNG, JPEG, ...)")
    once.add_argument("--threshold", type=float, help="defect threshold (default: the card's)")
    run = sub.add_parser("run", help="run the agent with a YAML config (the systemd service runs this)")
    run.add_argument("config", type=Path, help="YAML config file (see docs/config-reference.md)")
    levels = ["DEBUG", "INFO", "WARNING", "ERROR"]
    run.add_argument("--log-level", choices=levels, help="override the config's logging.level")
    run.set_defaults(func=_run)
    check = sub.add_parser("check-config", help="validate a YAML config without starting; exit 0, 66 or 78")
    check.add_argument("config", type=Path, help="YAML config file")
    check.set_defaults(func=_check_config)
    bench = sub.add_parser(
        "bench", help="invoke ceiling per model and thread count, and video decode, measured side by side"
    )
    bench.add_argument("--model", type=Path, action="append", required=True, help=".tflite file; repeat")
    bench.add_argument("--threads", help="comma-separated thread counts (default: 1, 2 and all cores)")
    bench.add_argument("--runs", type=int, default=300, help="timed invokes per model and thread count")
    bench.add_argument("--video", type=Path, help="also time decoding this video file")
    bench.add_argument("--out", type=Path, help="write the results as JSON here")
    bench.set_defaults(func=_bench)
    pipe = sub.add_parser(
        "bench-pipeline",
        help="the whole agent on a video vs its decode/invoke ceilings and the naive single-thread loop",
        description="Runs `inspect-agent run` (continuous trigger on the belt ROI, results on a local "
        "mosquitto) and the naive loop alternately on the same video as fast as it decodes; reports "
        "frames/s, CPU %, RSS, per-stage times, capture-to-publish latency, ratios to the ceilings.",
    )
    pipe.add_argument("--model", type=Path, action="append", required=True, help=".tflite file; repeat")
    pipe.add_argument(
        "--video", type=Path, action="append", help="a video file (ROI from line.json beside it)"
    )
    pipe.add_argument(
        "--resolution",
        type=_resolution,
        action="append",
        help="generate a line video WxH (default 1280x720 without --video)",
    )
    pipe.add_argument(
        "--roi", type=_roi, help="x,y,width,height for every source (default: the belt, or the frame)"
    )
    pipe.add_argument("--seconds", type=float, default=20, help="length of generated videos at 30 fps")
    pipe.add_argument("--threads", default="1,2", help="interpreter thread counts to compare")
    pipe.add_argument("--rounds", type=int, default=3, help="alternating agent/naive rounds (median kept)")
    pipe.add_argument("--paced-fps", type=float, default=30, help="latency run below capacity (0 = skip)")
    pipe.add_argument("--paced-frames", type=int, default=300, help="frames in the paced latency run")
    pipe.add_argument("--workdir", type=Path, default=Path("out/bench"), help="videos, configs and logs")
    pipe.add_argument("--out", type=Path, help="write the results as JSON here")
    pipe.add_argument(
        "--baseline", type=Path, help="also run the agent in this folder (holding agent/): before/after"
    )
    pipe.add_argument(
        "--reduce", type=int, choices=[2, 4], help="also run the agent with cameras.<id>.reduce (MJPG videos)"
    )
    pipe.set_defaults(func=_bench_pipeline)
    soak = sub.add_parser(
        "bench-soak",
        help="the agent for N minutes at a fixed frame rate: RSS, open fds, CPU and latency over time",
    )
    soak.add_argument("--model", type=Path, required=True, help=".tflite file with its card")
    soak.add_argument("--video", type=Path, help="video file, looped (default: a generated 1280x720 line)")
    soak.add_argument("--minutes", type=float, default=10, help="how long (default 10)")
    soak.add_argument("--fps", type=float, default=30, help="frame rate the video is paced at")
    soak.add_argument("--threads", type=int, help="interpreter threads (default: all cores)")
    soak.add_argument("--every", type=float, default=2.0, help="seconds between /proc samples")
    soak.add_argument("--workdir", type=Path, default=Path("out/bench"), help="videos, configs and logs")
    soak.add_argument("--out", type=Path, help="write the results and samples as JSON here")
    soak.add_argument("--plot", type=Path, help="write a PNG of RSS and fds over time here")
    soak.set_defaults(func=_bench_soak)
    info.set_defaults(func=_info)
    once.set_defaults(func=_once)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_command("inspect-agent", args)


if __name__ == "__main__":
    sys.exit(main())
