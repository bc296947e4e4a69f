"""``inspect-model <command> --task timeseries``: the sensor toolchain behind the same four commands.

    inspect-model synth    --task timeseries --out data/sensors --duration 3600 --seed 0
    inspect-model train    --task timeseries --data data/sensors --out runs/sensors
    inspect-model convert  --task timeseries --model runs/sensors/model.keras --out models/sensors
    inspect-model evaluate --task timeseries --data data/sensors-holdout \\
                           --model models/sensors/sensors_dynamic.tflite --out reports/sensors
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from types import ModuleType

from tools._cli_util import HelpFormatter, program_parser
from tools.timeseries import convert, evaluate, synth, train

__all__ = ["COMMANDS", "build_parser", "wants_timeseries"]

COMMANDS: dict[str, ModuleType] = {"synth": synth, "train": train, "convert": convert, "evaluate": evaluate}
_SEEDED = ("synth", "train", "convert")


def wants_timeseries(argv: Sequence[str]) -> bool:
    """True for ``<command> ... --task timeseries`` (or ``--task=timeseries``) with a command we have."""
    args = list(argv)
    command = next((a for a in args if not a.startswith("-")), None)
    if command not in COMMANDS:
        return False
    for i, arg in enumerate(args):
        if arg == "--task" and i + 1 < len(args) and args[i + 1] == "timeseries":
            return True
        if arg == "--task=timeseries":
            return True
    return False


def build_parser() -> argparse.ArgumentParser:
    parser, subparsers = program_parser(__doc__)
    for name, module in COMMANDS.items():
        p = subparsers.add_parser(
            name,
            help=(module.__doc__ or "").splitlines()[0],
            description=module.__doc__,
            formatter_class=HelpFormatter,
        )
        p.add_argument("--task", choices=["timeseries"], required=True, help="sensor time series")
        module.add_arguments(p)
        if name in _SEEDED:
            p.add_argument("--seed", type=int, default=0)
        run: Callable[[argparse.Namespace], int] = module.run
        p.set_defaults(func=run)
    return parser
