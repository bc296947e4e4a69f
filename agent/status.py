"""Exit codes shared by ``inspect-agent`` and ``inspect-model``.

They follow BSD ``sysexits.h`` where one fits, so that shell scripts and systemd
(``RestartPreventExitStatus=78``) can tell a bad config from a crash.
"""

from __future__ import annotations

from enum import IntEnum, unique

__all__ = ["ExitStatus", "InspectError"]


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
