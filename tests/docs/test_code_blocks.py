"""Every code block in README.md and docs/ runs, so no example can rot.

Each page's Python blocks run in order in one namespace, in a fresh interpreter (a page reads
top to bottom, like a notebook; a block may use what an earlier block on the same page
defined). Shell blocks run with bash in a scratch directory that has the repository's
examples/, benchmarks/ and deploy/ beside it, with this interpreter's scripts on PATH.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.docs.helpers import (
    PAGES,
    ROOT,
    ShellBlock,
    page_id,
    python_blocks,
    shell_blocks,
    skip_reason,
)

PYTHON_PAGES = [page for page in PAGES if python_blocks(page)]
SHELL_BLOCKS = [block for page in PAGES for block in shell_blocks(page)]
PAGE_TIMEOUT = 240


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = str(ROOT)
    for name in [name for name in env if name.startswith("OTEL_")]:
        del env[name]
    return env


@pytest.mark.timeout(PAGE_TIMEOUT + 30)
@pytest.mark.parametrize("page", PYTHON_PAGES, ids=page_id)
def test_python_blocks_run(page: Path, tmp_path: Path) -> None:
    env = _env() | {"RH_DOCS_PAGE": str(page)}
    run = subprocess.run(
        [
            sys.executable, "-m", "pytest", str(ROOT / "tests/docs/page_runner.py"),
            "-q", "--tb=short", "-p", "no:cacheprovider", "-W", "error", f"--rootdir={ROOT}",
            f"--timeout={PAGE_TIMEOUT}", f"--basetemp={tmp_path / 'pytest'}",
        ],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=PAGE_TIMEOUT + 20,
    )  # fmt: skip
    assert run.returncode == 0, f"{page_id(page)}:\n{run.stdout[-6000:]}\n{run.stderr[-3000:]}"


@pytest.mark.timeout(200)
@pytest.mark.parametrize("block", SHELL_BLOCKS, ids=str)
def test_shell_blocks_run(block: ShellBlock, tmp_path: Path) -> None:
    reason = skip_reason(block.settings, block)
    if reason is not None:
        pytest.skip(reason)
    for folder in ("examples", "benchmarks", "deploy"):
        (tmp_path / folder).symlink_to(ROOT / folder)
    run = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", block.source],
        cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert run.returncode == 0, f"{block}:\n{run.stdout[-4000:]}\n{run.stderr[-4000:]}"
