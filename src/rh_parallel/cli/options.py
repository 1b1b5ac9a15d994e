"""Argument parsing for the ``rh-parallel`` commands: one-line errors and checked values.

A bad flag costs the user one line on stderr naming the flag, and exit status 2 (argparse's
convention), never a traceback and never a run that cannot end (``--duration nan``). Numbers
are checked where they are parsed, so the rest of the CLI can trust them.
"""

from __future__ import annotations

import argparse
import math
from typing import NoReturn

from rh_parallel.runtime.runs import MAX_RUN_ID_LENGTH, check_run_id

__all__ = [
    "EXIT_USAGE",
    "OneLineParser",
    "fraction",
    "nonnegative_seconds",
    "port",
    "positive_int",
    "run_id",
]

EXIT_USAGE = 2
"""Bad arguments, or a metrics address that cannot be served: argparse's own exit status."""


class OneLineParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors are one line: ``prog: error: argument --flag: why``.

    argparse's default prints the whole usage (several lines for the demo) before the error;
    one line is easier to read in a terminal and to match in scripts, and ``--help`` is a flag
    away. The format and the exit status (2) stay argparse's.
    """

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None


def nonnegative_seconds(text: str) -> float:
    """Seconds: a finite number >= 0 (``nan`` and ``inf`` would make a run that never ends)."""
    value = _number(text)
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"expected finite seconds >= 0, got {text}")
    return value


def fraction(text: str) -> float:
    """A share from 0 to 1 (``nan`` refused: every comparison with it is false)."""
    value = _number(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"expected a share from 0 to 1, got {text}")
    return value


def positive_int(text: str) -> int:
    """A whole number >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text}")
    return value


def port(text: str) -> int:
    """A TCP port from 0 to 65535; 0 asks the system for a free one."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number, got {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(
            f"expected a port from 1 to 65535 (or 0 for any free port), got {text}"
        )
    return value


def run_id(text: str) -> str:
    """A run id as ``ExecutionState`` takes it: 1 to 200 printable characters."""
    try:
        return check_run_id(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected 1 to {MAX_RUN_ID_LENGTH} printable characters, got {text!r}"
        ) from None
