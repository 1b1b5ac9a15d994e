"""Every query of every dashboard panel returns data from a real Prometheus scraping the demo."""

from __future__ import annotations

import os
import subprocess
import time
import urllib.parse
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.deploy.helpers import panel_queries
from tests.integration.helpers import Prometheus, demo_command, free_port, http_json

pytestmark = pytest.mark.integration


def substitute(expr: str) -> str:
    """Grafana's template variables, as Grafana would expand them for a short range."""
    return (
        expr.replace("$__rate_interval", "30s")
        .replace("$__range", "5m")
        .replace('"$group"', '".*"')
    )


def test_every_panel_query_returns_data(
    prometheus: Callable[[list[str]], Prometheus], tmp_path: Path
) -> None:
    metrics_port = free_port()
    with (tmp_path / "demo.out").open("w") as output:
        demo = subprocess.Popen(
            demo_command(
                "--duration",
                "40",
                "--latency",
                "0.05",
                "--fail-rate",
                "0.45",
                "--docs",
                "8",
                "--metrics-port",
                str(metrics_port),
                "--mode",
                "collapsed",
            ),
            env=os.environ,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        server = prometheus([f"127.0.0.1:{metrics_port}"])
        missing = {(d, t, q) for d, t, q in panel_queries()}
        deadline = time.monotonic() + 45
        while missing and time.monotonic() < deadline:
            for key in sorted(missing):
                if server.query(substitute(key[2])):
                    missing.discard(key)
            time.sleep(1)
        assert not missing, f"panels with no data: {sorted((d, t) for d, t, _ in missing)}"
        label_values = http_json(
            f"http://127.0.0.1:{server.port}/api/v1/label/group/values?"
            + urllib.parse.urlencode({"match[]": "rh_parallel_events_total"})
        )
        assert "Document Processing" in label_values["data"]  # the group variable has values
    finally:
        demo.terminate()
        demo.wait(timeout=30)
