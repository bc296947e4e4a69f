"""``inspect-model``: the workstation toolchain.

    inspect-model synth    --out data/parts --count 1000          # images with masks and boxes
    inspect-model synth    --video --out data/line                # a line video with ground truth
    inspect-model train    --data data/parts --out runs/parts     # Keras CNN from scratch
    inspect-model convert  --model runs/parts/model.keras --rep-data data/parts --out models/
    inspect-model evaluate --data data/holdout --model models/parts_int8.tflite --out reports/
    inspect-model card     --labels labelmap.txt ssd_mobilenet.tflite     # a card for a model built elsewhere

Each subcommand's ``--help`` lists its options and defaults. Exit codes: see ``agent.status.ExitStatus``.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Sequence

from agent import __version__
from agent.status import run_command
from tools import calibrate, convert, detect_card, evaluate, synth, train

__all__ = ["build_parser", "main"]

_COMMANDS = (synth, train, convert, evaluate, calibrate, detect_card)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="inspect-model",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument("--traceback", action="store_true", help="print the full traceback on errors")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in _COMMANDS:
        module.add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    return run_command("inspect-model", args)


def run_step(title: str, argv: list[str]) -> None:
    """One ``inspect-model`` step of a scripted pipeline, timed; exits with its code when it fails."""
    print(f"\n=== {title}: inspect-model {' '.join(argv)}", flush=True)
    started = time.monotonic()
    code = main(argv)
    if code != 0:
        sys.exit(code)
    print(f"=== {title}: {time.monotonic() - started:.1f} s", flush=True)


if __name__ == "__main__":
    sys.exit(main())
