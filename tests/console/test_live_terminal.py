"""``rh-parallel demo --mode live`` in a real pseudo-terminal, read back by a terminal emulator.

The demo runs as a subprocess whose stdin, stdout and stderr are the slave side of a pty
(120 x 50); everything it writes is read from the master side as it comes and fed to pyte,
which keeps the screen and the scrollback. Frames are the screen after each read.
"""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
import time
from dataclasses import dataclass, field

import pyte
import pytest

COLUMNS, ROWS = 120, 50
DEMO = ("--latency", "0.05", "--docs", "24", "--fail-rate", "0.1", "--seed", "5")
ROW = re.compile(r"^Document Processing\s+\S*\s*(\d+)/25\b")  # the live row of the outer group


@dataclass
class Terminal:
    """What the demo wrote to the pty (``raw``), and what the emulator showed after each read
    (``frames``): the screen's lines."""

    status: int
    raw: bytes
    screen: pyte.HistoryScreen
    frames: list[list[str]] = field(default_factory=list)

    @property
    def lines(self) -> list[str]:
        """Everything on the final screen and above it in the scrollback, blanks at the end
        left out."""
        history = ["".join(line[x].data for x in sorted(line)) for line in self.screen.history.top]
        lines = [line.rstrip() for line in [*history, *self.screen.display]]
        while lines and not lines[-1]:
            lines.pop()
        return lines


def run_in_terminal(*args: str, env: dict[str, str] | None = None) -> Terminal:
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", ROWS, COLUMNS, 0, 0))
    environment = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR")}
    environment.update(TERM="xterm-256color", COLUMNS=str(COLUMNS), LINES=str(ROWS))
    environment.update(env or {})
    command = [sys.executable, "-m", "rh_parallel.cli.main", "demo", "--no-telemetry", *args]
    process = subprocess.Popen(
        command, stdin=slave, stdout=slave, stderr=slave, env=environment, close_fds=True
    )
    os.close(slave)
    screen = pyte.HistoryScreen(COLUMNS, ROWS, history=10_000)
    stream = pyte.ByteStream(screen)
    chunks: list[bytes] = []
    frames: list[list[str]] = []
    deadline = time.monotonic() + 50
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.05)
            if not ready:
                if process.poll() is not None:
                    break
                continue
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the child has gone and the pty is drained
                break
            if not data:
                break
            chunks.append(data)
            stream.feed(data)
            frames.append([line.rstrip() for line in screen.display])
    finally:
        os.close(master)
        if process.poll() is None:
            process.kill()
        status = process.wait(timeout=10)
    return Terminal(status, b"".join(chunks), screen, frames)


def records_of_the_same_run() -> int:
    """How many records the same run publishes (its JSON lines, less the report)."""
    command = [sys.executable, "-m", "rh_parallel.cli.main", "demo", "--no-telemetry", *DEMO]
    done = subprocess.run(
        [*command, "--mode", "json"], capture_output=True, text=True, timeout=50, check=True
    )
    return sum(1 for line in done.stdout.splitlines() if json.loads(line)["event"] != "demo_report")


@pytest.fixture(scope="module")
def live() -> Terminal:
    return run_in_terminal(*DEMO, "--mode", "live")


def test_the_bars_advance_in_place(live: Terminal) -> None:
    assert live.status == 0, live.raw.decode(errors="replace")[-2000:]
    progress = []
    for frame in live.frames:
        rows = [m for m in map(ROW.match, frame) if m]
        assert len(rows) <= 1, frame  # never a stale copy of the view left on screen
        progress += [int(rows[0].group(1))] if rows else []
    assert len(set(progress)) >= 2, progress  # redrawn with new counts
    assert progress == sorted(progress)
    assert b"\x1b[?25l" in live.raw and b"\x1b[1A" in live.raw  # cursor hidden, moved up


def test_the_final_screen_has_every_group_and_failure_and_no_view(live: Terminal) -> None:
    lines = live.lines
    text = "\n".join(lines)
    (outer,) = [line for line in lines if "Parallel Group: Document Processing [25/25]" in line]
    completed, failed = map(int, re.search(r"(\d+) completed, (\d+) failed", outer).groups())  # type: ignore[union-attr]
    report = re.search(r"documents: (\d+) completed, (\d+) failed, 24 total", text)
    assert report is not None, text
    failures = re.findall(r"^  failed (doc-\d\d): ", text, re.MULTILINE)
    assert completed + failed == 25 and len(failures) == int(report.group(2))
    for document in failures:  # each failure kept, above the report
        assert re.search(rf"✘ 🔧 {document} \[FAILED\]", text), document
    documents = {f"doc-{n:02d}" for n in range(1, 25)}
    parsed = documents - set(failures)
    for document in parsed:  # every nested group's totals
        for step in ("analyze", "search"):
            assert re.search(rf"Parallel Group: {document} › {step} \[\d/\d\] .* completed", text)
    assert not any(line.startswith("group ") or ROW.match(line) for line in lines)  # view gone
    assert not live.screen.cursor.hidden


def test_the_scrollback_does_not_grow_with_each_record(live: Terminal) -> None:
    records = records_of_the_same_run()
    written = len(live.lines)
    kept = sum(1 for line in live.lines if "Parallel Group:" in line or "[FAILED]" in line)
    assert records > 200
    assert written < records / 4, (written, records)
    assert written <= kept + 10  # the kept lines, the headers, the report


def test_auto_is_live_on_a_terminal() -> None:
    terminal = run_in_terminal("--docs", "2", "--latency", "0.01", "--mode", "auto")
    assert terminal.status == 0
    assert b"\x1b[?25l" in terminal.raw  # the live view hid the cursor
    assert "Parallel Group: Document Processing [3/3]" in "\n".join(terminal.lines)


def test_auto_is_smart_on_a_pipe() -> None:
    command = [sys.executable, "-m", "rh_parallel.cli.main", "demo", "--no-telemetry"]
    done = subprocess.run(
        [*command, "--docs", "2", "--latency", "0.01", "--mode", "auto"],
        capture_output=True,
        text=True,
        timeout=50,
        check=True,
    )
    assert "\x1b" not in done.stdout
    assert "▶ 📦 Parallel Group: Document Processing [0/3]" in done.stdout  # smart: progress


def test_ascii_terminal_gets_ascii_and_no_colour_when_asked() -> None:
    terminal = run_in_terminal(
        *DEMO, "--mode", "live", env={"PYTHONIOENCODING": "ascii", "NO_COLOR": "1"}
    )
    assert terminal.status == 0
    assert terminal.raw.isascii()
    assert not re.search(rb"\x1b\[\d+m", terminal.raw)  # cursor moves, but no colours
    assert "Parallel Group: Document Processing [25/25] ##########" in "\n".join(terminal.lines)
