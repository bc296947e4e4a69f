"""Small helpers shared by the subcommands: output folders and path checks with clear errors."""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any

from agent.status import ExitStatus, InspectError

__all__ = ["HelpFormatter", "ensure_output_dir", "program_parser", "require_dir", "require_file"]


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Show defaults, and keep a subcommand docstring's layout (its commands to copy) as written."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default in (None, False):  # "(default: None)" on a required path says nothing
            return action.help
        return super()._get_help_string(action)


def program_parser(description: str | None) -> tuple[argparse.ArgumentParser, Any]:
    """``inspect-model``'s top-level parser (version, -v, --traceback) and its subcommand registry."""
    from agent import __version__

    parser = argparse.ArgumentParser(
        prog="inspect-model", description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument("--traceback", action="store_true", help="print the full traceback on errors")
    return parser, parser.add_subparsers(dest="command", required=True, metavar="COMMAND")


def add_tflite_output_arguments(p: argparse.ArgumentParser, variants: tuple[str, ...]) -> None:
    """The options every ``convert`` shares: where the ``.tflite`` files and cards go, and which variants."""
    p.add_argument(
        "--out", type=Path, required=True, help="folder for <name>_<variant>.tflite and .json cards"
    )
    p.add_argument("--name", help="model name (default: the run folder's name)")
    p.add_argument("--model-version", default="1", help="version string stored in the card")
    p.add_argument(
        "--variants", default=",".join(variants), help=f"comma-separated subset of {','.join(variants)}"
    )


def ensure_output_dir(path: Path) -> Path:
    """Create ``path`` (and parents) and prove it is writable, or fail with CANT_CREATE.

    A real write probe, not ``os.access``: root passes ``os.access`` on read-only
    mounts, and we would rather fail now than after an hour of training.
    """
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise InspectError(f"cannot write to output folder {path}: {reason}", ExitStatus.CANT_CREATE) from exc
    return path


def require_dir(path: Path, what: str) -> Path:
    if not path.is_dir():
        raise InspectError(f"{what} {path} is not a folder", ExitStatus.NO_INPUT)
    return path


def require_file(path: Path, what: str) -> Path:
    if not path.exists():
        raise InspectError(f"{what} {path} does not exist", ExitStatus.NO_INPUT)
    return path
