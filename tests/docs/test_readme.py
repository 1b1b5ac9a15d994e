"""The README's one-screen program does what the README says, run as a newcomer would: saved
to a file, run twice with the same run id; the second run recovers what the first completed."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.docs.helpers import ROOT, python_blocks

SUMMARY = re.compile(r"· (\d+) completed(?: \((\d+) recovered\))?, (\d+) failed")


def _run(program: Path) -> tuple[int, int, int]:
    run = subprocess.run(
        [sys.executable, "-W", "error", str(program)],
        cwd=program.parent, capture_output=True, text=True, timeout=60,
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
    completed, recovered, failed = _run(program)
    assert (completed + failed, recovered) == (8, 0)
    again, recovered_again, failed_again = _run(program)
    assert (again + failed_again, recovered_again) == (8, completed)
    assert again >= completed
