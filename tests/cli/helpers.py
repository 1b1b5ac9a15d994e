"""Helpers for the CLI tests: how to start the real command, and what a clean stderr is."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

__all__ = [
    "CLI",
    "command",
    "demo_command",
    "from_a_terminal",
    "json_lines",
    "lines",
    "run_cli",
    "wait_for_output",
]

BOUND = 30  # seconds a CLI process may take before the test fails (a bound, not a measurement)

CLI = [sys.executable, "-m", "rh_parallel.cli.main"]

# Started from a test runner that is itself a background job, a child inherits SIGINT ignored
# (shells do that to background jobs), and the CLI rightly leaves an ignored SIGINT alone. A
# test of Ctrl-C wants the process a terminal would start: SIGINT back to Python's default.
_TERMINAL = (
    "import signal, sys\n"
    "signal.signal(signal.SIGINT, signal.default_int_handler)\n"
    "from rh_parallel.cli.main import main\n"
    "sys.exit(main(sys.argv[1:]))\n"
)


def demo_command(*args: str) -> list[str]:
    """The installed CLI, run as a subprocess exactly as a user would."""
    return command("demo", *args)


def command(*args: str) -> list[str]:
    """``rh-parallel ARGS``: the installed CLI, or the module when it is not installed."""
    cli = shutil.which("rh-parallel")
    return [cli, *args] if cli else [*CLI, *args]


def run_cli(*args: str, status: int | None = 0) -> subprocess.CompletedProcess[str]:
    """Run ``rh-parallel ARGS`` to its end (bounded); checks the exit status unless ``None``,
    and that stderr has no traceback whatever the status."""
    done = subprocess.run(
        command(*args), capture_output=True, text=True, timeout=BOUND, check=False
    )
    assert "Traceback" not in done.stderr, done.stderr
    if status is not None:
        assert done.returncode == status, (done.returncode, done.stderr)
    return done


def json_lines(text: str) -> list[dict[str, Any]]:
    """Every line of ``text`` parsed as a JSON object."""
    records = [json.loads(line) for line in text.splitlines()]
    assert all(isinstance(record, dict) for record in records)
    return records


def from_a_terminal(*args: str, ignore_sigint: bool = False) -> list[str]:
    """``rh-parallel ARGS`` with SIGINT as a terminal leaves it, or ignored as ``nohup`` or a
    shell's background job leaves it."""
    code = _TERMINAL
    if ignore_sigint:
        code = code.replace("signal.default_int_handler)", "signal.SIG_IGN)")
    return [sys.executable, "-c", code, *args]


def lines(text: str) -> list[str]:
    """The non-blank lines of ``text``."""
    return [line for line in text.splitlines() if line.strip()]


def wait_for_output(path: Path, process: subprocess.Popen[bytes], more_than: int = 0) -> int:
    """Wait (bounded) until the process has written more than ``more_than`` bytes to ``path``;
    returns the size. Fails if the process ended or nothing came."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        size = os.path.getsize(path)
        if size > more_than:
            return size
        assert process.poll() is None, f"the demo ended early with {process.returncode}"
        time.sleep(0.02)
    raise AssertionError(f"no output in {path} after 30 s")
