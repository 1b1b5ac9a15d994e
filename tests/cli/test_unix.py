"""The CLI behaves like a good Unix tool: quiet on a closed pipe, one-line errors for bad flags
and busy ports, Ctrl-C and SIGTERM handled once and cleanly.

Every test runs the real command as a subprocess and is bounded (a hang fails, it does not
block the suite); no test asserts how long anything took.
"""

from __future__ import annotations

import signal
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from rh_parallel.cli.main import main
from tests.cli.helpers import CLI, from_a_terminal, lines, wait_for_output

pytestmark = pytest.mark.timeout(90)

FAST = ("--latency", "0.01", "--docs", "3")
BOUND = 30  # seconds any stop may take before the test fails (a bound, not a measurement)


def clean(stderr: str) -> bool:
    return "Traceback" not in stderr and "Exception ignored" not in stderr


# -- output that goes away -------------------------------------------------------------------


@pytest.mark.parametrize("telemetry", [False, True], ids=["no-telemetry", "telemetry"])
def test_a_reader_that_goes_away_stops_the_run_quietly(telemetry: bool, tmp_path: Path) -> None:
    """``rh-parallel demo --loop | head -1``: the demo stops by itself, says nothing, exits 141."""
    stderr_path = tmp_path / "stderr"
    with stderr_path.open("wb") as stderr:
        process = subprocess.Popen(
            [*CLI, "demo", "--loop", *FAST, *([] if telemetry else ["--no-telemetry"])],
            stdout=subprocess.PIPE,
            stderr=stderr,
        )
        try:
            assert process.stdout is not None
            assert process.stdout.readline()
            process.stdout.close()  # what head does after its line
            returncode = process.wait(timeout=BOUND)  # --loop: only the closed pipe ends it
        finally:
            end(process)
    errors = stderr_path.read_text()
    assert returncode == 141, errors
    assert clean(errors) and len(lines(errors)) < 3, errors


def test_a_closed_stdout_is_one_line_and_a_failure() -> None:
    done = subprocess.run(
        ["bash", "-c", 'exec "$0" "$@" >&-', *CLI, "demo", "--no-telemetry", *FAST],
        capture_output=True,
        text=True,
        timeout=BOUND,
        check=False,
    )
    assert done.returncode == 1
    assert lines(done.stderr) == [
        "rh-parallel demo: error: standard output is closed; redirect it (e.g. >/dev/null)"
    ]


def test_an_unwritable_stdout_stops_the_run_with_one_line() -> None:
    """Standard output open, but for reading only: the first write fails, the run stops."""
    done = subprocess.run(
        [
            "bash",
            "-c",
            'exec "$0" "$@" 1</dev/null',
            *CLI,
            "demo",
            "--loop",
            "--no-telemetry",
            *FAST,
        ],
        capture_output=True,
        text=True,
        timeout=BOUND,
        check=False,
    )
    assert done.returncode == 1
    assert lines(done.stderr) == [
        "rh-parallel demo: error: cannot write to standard output: Bad file descriptor"
    ]


# -- bad flags and busy ports ----------------------------------------------------------------


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A port of 127.0.0.1 that something else already listens on."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        yield int(taken.getsockname()[1])


def test_a_busy_metrics_port_is_one_line_naming_it(busy_port: int) -> None:
    done = subprocess.run(
        [*CLI, "demo", "--metrics-port", str(busy_port), *FAST],
        capture_output=True,
        text=True,
        timeout=BOUND,
        check=False,
    )
    assert done.returncode == 2
    assert lines(done.stderr) == [
        f"rh-parallel demo: error: port {busy_port} on 127.0.0.1 is in use; "
        "pass --metrics-port with a free port"
    ]
    assert done.stdout == ""  # refused before anything ran


def test_an_unknown_metrics_address_is_one_line() -> None:
    done = subprocess.run(
        [*CLI, "demo", "--metrics-port", "0", "--metrics-addr", "no-such-host.invalid", *FAST],
        capture_output=True,
        text=True,
        timeout=BOUND,
        check=False,
    )
    assert done.returncode == 2 and clean(done.stderr)
    (line,) = lines(done.stderr)
    assert line.startswith("rh-parallel demo: error: cannot serve metrics on no-such-host")


@pytest.mark.parametrize(
    ("flag", "value"),
    [
        ("--metrics-port", "70000"),
        ("--metrics-port", "-1"),
        ("--metrics-port", "http"),
        ("--duration", "nan"),
        ("--duration", "inf"),
        ("--duration", "-1"),
        ("--latency", "nan"),
        ("--latency", "inf"),
        ("--latency", "-1"),
        ("--fail-rate", "nan"),
        ("--docs", "0"),
        ("--workers", "many"),
    ],
)
def test_a_bad_value_is_refused_in_one_line_naming_the_flag(
    flag: str, value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(["demo", flag, value])
    assert stopped.value.code == 2
    (line,) = lines(capsys.readouterr().err)
    assert line.startswith(f"rh-parallel demo: error: argument {flag}: ")
    assert value in line


@pytest.mark.parametrize(
    "args",
    [("--duration", "nan"), ("--metrics-port", "70000"), ("--metrics-port", "1", "--no-telemetry")],
)
def test_the_installed_command_refuses_bad_values_the_same_way(args: tuple[str, ...]) -> None:
    done = subprocess.run(
        [*CLI, "demo", *args], capture_output=True, text=True, timeout=BOUND, check=False
    )
    assert done.returncode == 2 and done.stdout == ""
    (line,) = lines(done.stderr)
    assert line.startswith("rh-parallel demo: error: ") and args[0] in line


# -- signals ---------------------------------------------------------------------------------


def start(tmp_path: Path, *args: str, ignore_sigint: bool = False) -> subprocess.Popen[bytes]:
    """The demo from a terminal, its output in files; returns once it printed something."""
    with (tmp_path / "stdout").open("wb") as out, (tmp_path / "stderr").open("wb") as err:
        process = subprocess.Popen(
            from_a_terminal("demo", *args, ignore_sigint=ignore_sigint), stdout=out, stderr=err
        )
    try:
        wait_for_output(tmp_path / "stdout", process)
    except BaseException:
        end(process)
        raise
    return process


def end(process: subprocess.Popen[bytes]) -> None:
    """Whatever happened, leave no process behind."""
    if process.poll() is None:
        process.kill()
        process.wait()


def stop(process: subprocess.Popen[bytes], *signals: int) -> int:
    try:
        for signum in signals:
            process.send_signal(signum)
        return process.wait(timeout=BOUND)
    finally:
        end(process)


@pytest.mark.parametrize(
    ("signum", "status"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=["INT", "TERM"]
)
@pytest.mark.parametrize("run", ["--loop", "--duration"])
def test_a_signal_stops_a_long_run_once_and_cleanly(
    signum: int, status: int, run: str, tmp_path: Path
) -> None:
    """The first SIGINT/SIGTERM cancels the run, flushes telemetry, exits 128 + signal."""
    length = ["--loop"] if run == "--loop" else ["--duration", "3600"]
    process = start(tmp_path, *length, *FAST)  # telemetry on: its shutdown is part of the stop
    assert stop(process, signum) == status
    errors = (tmp_path / "stderr").read_text()
    assert clean(errors) and lines(errors) == [], errors


def test_a_second_ctrl_c_does_not_hang_or_print_a_traceback(tmp_path: Path) -> None:
    process = start(tmp_path, "--loop", *FAST)
    assert stop(process, signal.SIGINT, signal.SIGINT) == 130
    errors = (tmp_path / "stderr").read_text()
    assert clean(errors) and lines(errors) == [], errors


def test_sigterm_closes_the_metrics_endpoint_it_opened(tmp_path: Path) -> None:
    process = start(tmp_path, "--loop", "--metrics-port", "0", *FAST)
    assert stop(process, signal.SIGTERM) == 143
    (line,) = lines((tmp_path / "stderr").read_text())  # port 0: the address chosen is told
    assert line.startswith("rh-parallel demo: serving metrics on http://127.0.0.1:")


def test_an_ignored_sigint_stays_ignored(tmp_path: Path) -> None:
    """Started with SIGINT ignored (``nohup``, a shell's background job), the demo keeps it so:
    it still runs after a SIGINT, and SIGTERM still stops it."""
    process = start(tmp_path, "--loop", "--no-telemetry", *FAST, ignore_sigint=True)
    try:
        process.send_signal(signal.SIGINT)
        printed = (tmp_path / "stdout").stat().st_size
        wait_for_output(tmp_path / "stdout", process, more_than=printed)  # fails if it ended
    except BaseException:
        end(process)
        raise
    assert stop(process, signal.SIGTERM) == 143
