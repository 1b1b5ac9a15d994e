"""Run an example as a user would: its own interpreter, warnings as errors, a scratch cwd."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def example_command(name: str, *args: str) -> list[str]:
    """``python -W error examples/<name> args...``: a warning fails the example."""
    return [sys.executable, "-W", "error", str(EXAMPLES / name), *args]


def example_env() -> dict[str, str]:
    """This environment, with plain output (no colours, UTF-8) and no Ray address to join."""
    env = {**os.environ, "NO_COLOR": "1", "PYTHONIOENCODING": "utf-8"}
    for name in ("FORCE_COLOR", "RAY_ADDRESS"):
        env.pop(name, None)
    return env


def run_example(
    name: str, *args: str, cwd: Path, timeout: float = 50
) -> subprocess.CompletedProcess[str]:
    """Run ``examples/<name>`` to its end in ``cwd`` (where the files it writes land)."""
    return subprocess.run(
        example_command(name, *args),
        cwd=cwd,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=timeout,
        env=example_env(),
        check=False,
    )
