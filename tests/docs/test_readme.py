"""The README's one-screen program does what the README says, run as a newcomer would: saved
to a file, run with one document's API down, then again with the same run id: the second run
recovers the seven that completed and runs the failed one only."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.docs.helpers import ROOT, python_blocks

SUMMARY = re.compile(r"(\d+) completed(?: \((\d+) recovered\))?, (\d+) failed")


def _run(program: Path, down: str = "") -> tuple[int, int, int]:
    run = subprocess.run(
        [sys.executable, "-W", "error", str(program)],
        cwd=program.parent, capture_output=True, text=True, timeout=60,
        env={**os.environ, "DOWN": down},
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert run.stderr == "", run.stderr  # no collector configured: no export noise either
    found = SUMMARY.findall(run.stdout)
    assert found, run.stdout
    completed, recovered, failed = found[-1]
    return int(completed), int(recovered or 0), int(failed)


@pytest.mark.timeout(150)
def test_one_screen_program_resumes_on_the_second_run(tmp_path: Path) -> None:
    program = tmp_path / "summaries.py"
    program.write_text(python_blocks(ROOT / "README.md")[0].source)
    assert _run(program, down="doc-3") == (7, 0, 1)
    assert _run(program) == (8, 7, 0)
    assert _run(program) == (8, 8, 0)  # nothing left to run
