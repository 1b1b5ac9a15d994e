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

    def query(self, promql: str) -> list[dict[str, Any]]:
        url = f"http://127.0.0.1:{self.port}/api/v1/query?" + urllib.parse.urlencode(
            {"query": promql}
        )
        body = http_json(url)
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
