"""The benchmark runs every contender on the same workload (no timing is asserted)."""

from __future__ import annotations

import asyncio
import os
import signal

import pytest

from rh_parallel.cli.bench import main, measure
from rh_parallel.cli.process import Signals


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


@pytest.mark.parametrize("bad", [["--items", "0"], ["--limit", "0"], ["--rounds", "-1"]])
def test_bench_refuses_sizes_that_cannot_be_measured(
    bad: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    """0 items divides by zero, limit 0 deadlocks, 0 rounds has no median: refused up front."""
    with pytest.raises(SystemExit) as stopped:
        main(bad)
    assert stopped.value.code == 2
    assert capsys.readouterr().err.startswith(f"rh-parallel bench: error: argument {bad[0]}: ")


@pytest.mark.timeout(30)
def test_a_signal_cancels_the_round_that_is_running() -> None:
    async def signalled(n: int, limit: int) -> None:
        os.kill(os.getpid(), signal.SIGTERM)
        await asyncio.sleep(3600)  # only the cancellation the signal causes ends this

    signals = Signals()
    signals.install()
    try:
        with pytest.raises(asyncio.CancelledError):
            measure([("signalled", signalled)], 1, 1, 1, signals)
    finally:
        signals.uninstall()
    assert signals.status == 143
