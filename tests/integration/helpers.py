"""Helpers for the integration tests: ports, polling, and clients of the real servers."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def http_json(url: str, timeout: float = 5.0) -> Any:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as error:
        error.close()  # an HTTPError holds the connection open until closed
        raise AssertionError(f"GET {url}: HTTP {error.code}") from None


def reachable(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=2):
        return True


def wait_until(check: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = check()
            if value:
                return value
        except Exception as exc:  # servers refuse connections while they start
            last = exc
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last error: {last})")


def require(binary: str) -> str:
    path = shutil.which(binary)
    if path is None:
        pytest.fail(f"{binary} is not installed; run scripts/test.sh, which installs it")
    return path


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@dataclass
class Phoenix:
    http_port: int
    grpc_port: int

    @property
    def http_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def grpc_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.grpc_port}"

    def spans(self, project: str) -> list[dict[str, Any]]:
        spans: list[dict[str, Any]] = []
        cursor = None
        while True:
            query = {"limit": "1000"} | ({"cursor": cursor} if cursor else {})
            page = http_json(
                f"{self.http_endpoint}/v1/projects/{urllib.parse.quote(project)}/spans?"
                + urllib.parse.urlencode(query)
            )
            spans.extend(page["data"])
            cursor = page.get("next_cursor")
            if not cursor:
                return spans


@dataclass
class Prometheus:
    port: int

    def query(self, promql: str, at: float | None = None) -> list[dict[str, Any]]:
        """The result of an instant query, now or ``at`` (a Unix time)."""
        params = {"query": promql} | ({"time": repr(at)} if at is not None else {})
        url = f"http://127.0.0.1:{self.port}/api/v1/query?" + urllib.parse.urlencode(params)
        body = http_json(url)
        assert body["status"] == "success", body
        return list(body["data"]["result"])

    def query_range(
        self, promql: str, start: float, end: float, step: float = 1.0
    ) -> list[dict[str, Any]]:
        """A range query, as a Grafana time-series panel runs it: ``[{"metric": labels,
        "values": [[t, "v"], ...]}, ...]``."""
        params = {"query": promql, "start": repr(start), "end": repr(end), "step": repr(step)}
        url = f"http://127.0.0.1:{self.port}/api/v1/query_range?" + urllib.parse.urlencode(params)
        body = http_json(url, timeout=30)
        assert body["status"] == "success", body
        return list(body["data"]["result"])

    def exemplars(self, promql: str, since: float) -> list[dict[str, Any]]:
        url = f"http://127.0.0.1:{self.port}/api/v1/query_exemplars?" + urllib.parse.urlencode(
            {"query": promql, "start": str(since), "end": str(time.time() + 60)}
        )
        body = http_json(url)
        assert body["status"] == "success", body
        return list(body["data"])


def demo_command(*args: str) -> list[str]:
    """The installed CLI, run as a subprocess exactly as a user would."""
    cli = shutil.which("rh-parallel")
    return (
        [cli, "demo", *args]
        if cli
        else [sys.executable, "-m", "rh_parallel.cli.main", "demo", *args]
    )


def start_prometheus(
    directory: Path, targets: list[str], interval: str = "1s"
) -> tuple[Prometheus, subprocess.Popen[bytes]]:
    """Start a Prometheus (the Debian package) that scrapes ``targets`` every ``interval``,
    with its config, data and log in ``directory``; the caller stops the process."""
    binary = require("prometheus")
    port = free_port()
    config = directory / "prometheus.yml"
    config.write_text(
        f"global:\n  scrape_interval: {interval}\n  evaluation_interval: {interval}\n"
        "scrape_configs:\n  - job_name: rh-parallel\n"
        f"    static_configs:\n      - targets: {json.dumps(targets)}\n"
    )
    with (directory / "prometheus.log").open("wb") as log:
        process = subprocess.Popen(
            [
                binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={directory / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--enable-feature=exemplar-storage",
            ],
            stdout=log,
            stderr=log,
        )
    try:
        wait_until(
            lambda: reachable(f"http://127.0.0.1:{port}/-/ready"), 60, "prometheus to be ready"
        )
    except BaseException:
        stop(process)
        raise
    return Prometheus(port), process
