"""Real servers for the integration tests: Prometheus (Debian package) and Phoenix (an OTLP
receiver over HTTP and gRPC that answers span queries). ``scripts/test.sh`` installs both;
the fixtures start them on loopback ports and stop them afterwards."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.integration.helpers import (
    Phoenix,
    Prometheus,
    free_port,
    reachable,
    require,
    stop,
    wait_until,
)

pytestmark = pytest.mark.integration


@pytest.fixture(scope="session")
def phoenix(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Phoenix]:
    binary = require("phoenix")
    http_port, grpc_port = free_port(), free_port()
    env = os.environ | {
        "PHOENIX_WORKING_DIR": str(tmp_path_factory.mktemp("phoenix")),
        "PHOENIX_HOST": "127.0.0.1",
        "PHOENIX_PORT": str(http_port),
        "PHOENIX_GRPC_PORT": str(grpc_port),
        "PHOENIX_TELEMETRY_ENABLED": "false",
    }
    log = tmp_path_factory.mktemp("phoenix-log") / "phoenix.log"
    with log.open("wb") as out:
        process = subprocess.Popen([binary, "serve"], env=env, stdout=out, stderr=out)
    try:
        wait_until(
            lambda: reachable(f"http://127.0.0.1:{http_port}/healthz"),
            120,
            "phoenix to start",
        )
        yield Phoenix(http_port, grpc_port)
    finally:
        stop(process)


@pytest.fixture
def prometheus(tmp_path: Path) -> Iterator[Callable[[list[str]], Prometheus]]:
    """Start a Prometheus that scrapes the given ``host:port`` targets every second."""
    binary = require("prometheus")
    processes: list[subprocess.Popen[bytes]] = []

    def start(targets: list[str]) -> Prometheus:
        port = free_port()
        config = tmp_path / "prometheus.yml"
        config.write_text(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
            "scrape_configs:\n  - job_name: rh-parallel\n"
            f"    static_configs:\n      - targets: {json.dumps(targets)}\n"
        )
        with (tmp_path / "prometheus.log").open("wb") as log:
            process = subprocess.Popen(
                [
                    binary,
                    f"--config.file={config}",
                    f"--storage.tsdb.path={tmp_path / 'data'}",
                    f"--web.listen-address=127.0.0.1:{port}",
                    "--enable-feature=exemplar-storage",
                ],
                stdout=log,
                stderr=log,
            )
        processes.append(process)
        wait_until(
            lambda: reachable(f"http://127.0.0.1:{port}/-/ready"),
            60,
            "prometheus to be ready",
        )
        return Prometheus(port)

    yield start
    for process in processes:
        stop(process)
