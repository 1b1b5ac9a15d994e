"""The benchmark runs every contender on the same workload (no timing is asserted)."""

from __future__ import annotations

import pytest

from rh_parallel.cli.bench import main


def test_bench_reports_every_contender(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--items", "300", "--rounds", "1"]) == 0
    out = capsys.readouterr().out
    for row in (
        "asyncio.gather+semaphore",
        "TaskGroup+semaphore",
        "aiometer.run_all",
        "rh-parallel (no observers)",
        "rh-parallel (default telemetry, no SDK)",
        "rh-parallel (SDK batch spans + metrics)",
    ):
        assert row in out
