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
import json
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
    info.set_defaults(func=_info)
    once.set_defaults(func=_once)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_command("inspect-agent", args)


if __name__ == "__main__":
    sys.exit(main())
