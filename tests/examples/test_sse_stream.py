"""examples/sse_stream.py: a real server, a real HTTP client reading server-sent events."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.examples.helpers import example_command, example_env

httpx = pytest.importorskip("httpx")
pytest.importorskip("uvicorn")


class Served:
    """The example serving on a free port, in its own process."""

    def __init__(self, cwd: Path, *args: str) -> None:
        self.process = subprocess.Popen(
            example_command("sse_stream.py", "--port", "0", *args),
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
            env=example_env(),
        )
        try:
            assert self.process.stdout is not None
            first = self.process.stdout.readline()  # printed before the server starts
            assert first.startswith("serving on http://127.0.0.1:"), first
            self.url = first.split()[-1]
            self.client = httpx.Client(base_url=self.url, timeout=10)
            self._wait_until_ready()
        except BaseException:
            self.kill()
            raise

    def _wait_until_ready(self) -> None:
        deadline = time.monotonic() + 20
        while True:
            try:
                self.client.get("/runs")
                return
            except httpx.TransportError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise
                time.sleep(0.05)

    def runs(self) -> dict[str, Any]:
        answer = self.client.get("/runs")
        assert answer.status_code == 200
        return dict(answer.json())

    def kill(self) -> None:
        """Whatever happened, leave no server and no open client behind."""
        if hasattr(self, "client"):
            self.client.close()
        if self.process.poll() is None:
            self.process.kill()
            self.process.communicate()
        for stream in (self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()

    def stop(self) -> tuple[int, str, str]:
        """Ctrl-C, as a user stops it: its exit status, stdout (after the address) and stderr."""
        self.client.close()
        self.process.send_signal(signal.SIGINT)
        out, err = self.process.communicate(timeout=20)
        return self.process.returncode, out, err


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    server = Served(tmp_path)
    try:
        yield server
    finally:
        server.kill()


def read_events(response: Any) -> list[dict[str, Any]]:
    """The whole body as SSE events: each one ``data: <JSON>`` and a blank line, nothing else."""
    body = "".join(response.iter_text())
    assert body.endswith("\n\n")
    events = []
    for block in body[:-2].split("\n\n"):
        assert block.startswith("data: ") and "\n" not in block, block
        events.append(json.loads(block.removeprefix("data: ")))
    return events


def test_a_client_reads_every_record_until_the_group_ends(served: Served) -> None:
    with served.client.stream("GET", "/events", params={"docs": 5}) as response:
        assert response.status_code == 200
        assert response.headers["content-type"] == "text/event-stream"
        events = read_events(response)
    first, *items, last = events
    assert first["kind"] == "group" and first["status"] == "running" and first["total"] == 5
    # the group's end record is the last event: its counts add up, the failure is named
    assert last["kind"] == "group" and last["group_id"] == first["group_id"]
    assert last["status"] == "failed" and (last["completed"], last["failed"]) == (4, 1)
    assert [e["name"] for e in last["errors"]] == ["doc-3"]
    assert {e["kind"] for e in items} == {"item"}
    statuses = {e["item_name"]: e["execution_status"] for e in items}  # each item's last one
    assert statuses == {f"doc-{n}": "failed" if n == 3 else "completed" for n in range(5)}
    assert len(items) == 10  # started and ended, for each of the five
    done = {e["item_name"]: e["detail"] for e in items if e["execution_status"] == "completed"}
    assert done["doc-0"] == "'summary of doc-0'"
    runs = served.runs()
    assert runs["streams"] == 0
    assert runs["runs"] == [
        {"run_id": first["run_id"], "docs": 5, "status": "failed", "completed": 4, "failed": 1}
    ]
    # the other routes
    page = served.client.get("/")
    assert page.status_code == 200 and "new EventSource(" in page.text
    assert served.client.get("/events", params={"docs": "x"}).status_code == 400
    assert served.client.get("/nowhere").status_code == 404
    code, out, err = served.stop()
    assert (code, out, err) == (0, "stopped after 1 runs: failed\n", "")


def test_a_client_leaving_early_stops_its_stream_not_the_run(served: Served) -> None:
    with served.client.stream("GET", "/events", params={"docs": 10}) as response:
        lines = response.iter_lines()
        assert next(lines).startswith("data: ")
        assert next(lines) == ""
        assert next(lines).startswith("data: ")
    # the client left after two events: its stream ended, the run goes on to its end
    deadline = time.monotonic() + 20
    while (runs := served.runs())["runs"][0]["status"] == "running":
        assert time.monotonic() < deadline, runs
        time.sleep(0.05)
    assert runs["streams"] == 0
    (run,) = runs["runs"]
    assert (run["status"], run["completed"], run["failed"]) == ("failed", 9, 1)
    # and the server serves the next client in full
    with served.client.stream("GET", "/events", params={"docs": 2}) as response:
        events = read_events(response)
    assert events[-1]["kind"] == "group" and events[-1]["status"] == "completed"
    code, out, err = served.stop()
    assert (code, out, err) == (0, "stopped after 2 runs: failed, completed\n", "")


def test_stopping_the_server_ends_open_streams_and_cancels_the_runs(tmp_path: Path) -> None:
    server = Served(tmp_path, "--delay", "5")
    try:
        with server.client.stream("GET", "/events", params={"docs": 30}) as response:
            lines = response.iter_lines()
            assert json.loads(next(lines).removeprefix("data: "))["status"] == "running"
            server.process.send_signal(signal.SIGINT)
            rest = list(lines)  # the server ends the stream instead of waiting for the run
        assert rest[-1] == "" and all(line == "" or line.startswith("data: ") for line in rest)
        out, err = server.process.communicate(timeout=20)
        assert (server.process.returncode, out, err) == (0, "stopped after 1 runs: cancelled\n", "")
    finally:
        server.kill()
