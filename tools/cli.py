"""``inspect-model``: the workstation toolchain.

    inspect-model synth    --out data/parts --count 1000          # images with masks and boxes
    inspect-model synth    --video --out data/line                # a line video with ground truth
    inspect-model train    --data data/parts --out runs/parts     # Keras CNN from scratch
    inspect-model convert  --model runs/parts/model.keras --rep-data data/parts --out models/
    inspect-model evaluate --data data/holdout --model models/parts_int8.tflite --out reports/
    inspect-model card     --labels labelmap.txt ssd_mobilenet.tflite     # a card for a model built elsewhere

Sensor time series: the same commands with ``--task timeseries`` (docs/timeseries.md;
``inspect-model synth --task timeseries --help``).

Each subcommand's ``--help`` lists its options and defaults. Exit codes: see ``agent.status.ExitStatus``.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Sequence

from agent.status import run_command
from tools import calibrate, convert, detect_card, evaluate, synth, train
from tools._cli_util import program_parser
from tools.timeseries import cli as timeseries_cli

__all__ = ["build_parser", "main"]

_COMMANDS = (synth, train, convert, evaluate, calibrate, detect_card)


def build_parser() -> argparse.ArgumentParser:
    parser, subparsers = program_parser(__doc__)
    for module in _COMMANDS:
        module.add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = timeseries_cli.build_parser() if timeseries_cli.wants_timeseries(argv) else build_parser()
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
