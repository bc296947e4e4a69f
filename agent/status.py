"""Exit codes shared by ``inspect-agent`` and ``inspect-model``.

They follow BSD ``sysexits.h`` where one fits, so that shell scripts and systemd
(``RestartPreventExitStatus=78``) can tell a bad config from a crash.
"""

from __future__ import annotations

import argparse
import sys
import traceback
from enum import IntEnum, unique

__all__ = ["ExitStatus", "InspectError", "run_command"]


@unique
class ExitStatus(IntEnum):
    OK = 0
    FAILURE = 1  # an unexpected error: a bug, reported with a traceback under --traceback
    USAGE = 2  # bad command line (argparse uses 2 too)
    CHECK_FAILED = 3  # the job ran but a quality gate failed (e.g. int8 agreement below --min-agreement)
    DATA_ERROR = 65  # input data unusable: no images, a single class, wrong tensor rank, card/model mismatch
    NO_INPUT = 66  # an input file or folder is missing or unreadable
    UNAVAILABLE = 69  # a needed component is not installed (e.g. TensorFlow for training)
    CANT_CREATE = 73  # the output location cannot be written
    CONFIG = 78  # configuration invalid; systemd should not restart


class InspectError(Exception):
    """An error with a message meant for the user and the exit code that classifies it."""

    def __init__(self, message: str, status: ExitStatus = ExitStatus.FAILURE) -> None:
        super().__init__(message)
        self.status = status


def run_command(program: str, args: argparse.Namespace) -> int:
    """Run ``args.func(args)`` and turn every outcome into one stderr line and an exit code.

    A user error (``InspectError``) prints its message; anything else is a bug and says
    so, with the traceback only under ``--traceback`` (as httpie does).
    """
    where = f"{program} {args.command}"
    try:
        return int(args.func(args))
    except InspectError as exc:
        if args.traceback:
            traceback.print_exc()
        print(f"{where}: error: {exc}", file=sys.stderr)
        return int(exc.status)
    except KeyboardInterrupt:
        print(f"{where}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if args.traceback:
            traceback.print_exc()
        print(
            f"{where}: unexpected error: {type(exc).__name__}: {exc} (run with --traceback for details)",
            file=sys.stderr,
        )
        return int(ExitStatus.FAILURE)
