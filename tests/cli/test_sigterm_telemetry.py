"""SIGTERM (what ``docker stop`` sends) stops the demo like Ctrl-C: the run is cancelled, every
span it ended is exported, the status is 143. And the demo follows the OTel variables: the
service name from ``OTEL_SERVICE_NAME``, the endpoint from ``OTEL_EXPORTER_OTLP_*``.

The receiver here is a small OTLP/HTTP server in the test process (it shows the resource of
each request); tests/integration/test_signals.py does the same against Phoenix.
"""

from __future__ import annotations

import json
import signal
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.cli.helpers import lines
from tests.integration.env_helpers import (
    clean_environment,
    demo_with_counts,
    otlp_recorder,
    wait_for,
)

pytestmark = pytest.mark.timeout(90)

FAST = ("--latency", "0.01", "--docs", "3", "--mode", "collapsed")
ROOT = Path(__file__).resolve().parents[2]


def test_sigterm_exports_every_span_of_the_run_and_exits_143(tmp_path: Path) -> None:
    report = tmp_path / "counts.json"
    with otlp_recorder() as receiver:
        env = clean_environment(
            OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=f"{receiver.url}/v1/traces",
            OTEL_SERVICE_NAME="stopped-by-sigterm",
        )
        with (tmp_path / "out").open("wb") as out, (tmp_path / "err").open("wb") as err:
            process = subprocess.Popen(
                demo_with_counts(str(report), "--loop", *FAST), env=env, stdout=out, stderr=err
            )
        try:
            # a batch went out, and more spans are queued behind it: the SIGTERM comes now
            wait_for(receiver.snapshot, 30, "a first export")
            process.send_signal(signal.SIGTERM)
            status = process.wait(timeout=30)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
        received = receiver.span_names()
        resources = [r for request in receiver.snapshot() for r in request.resources]
    errors = (tmp_path / "err").read_text()
    assert status == 143, errors
    assert lines(errors) == [], errors
    counts = json.loads(report.read_text())
    assert counts["ended"] > 0
    assert counts == {
        "ended": len(received),
        "exported": len(received),
        "failed": 0,
        "dropped": 0,
    }
    # the cancelled round's spans end last, in the batch a SIGTERM used to lose
    assert "invoke_agent orchestrator" in received
    assert {r["service.name"] for r in resources} == {"stopped-by-sigterm"}


def test_the_demo_names_its_service_from_the_environment_or_itself(tmp_path: Path) -> None:
    names = {}
    for case, extra in (("env", {"OTEL_SERVICE_NAME": "mine"}), ("default", {})):
        with otlp_recorder() as receiver:
            env = clean_environment(OTEL_EXPORTER_OTLP_ENDPOINT=receiver.url, **extra)
            done = subprocess.run(
                demo_with_counts(str(tmp_path / f"{case}.json"), *FAST),
                env=env,
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
            assert done.returncode == 0, done.stderr
            names[case] = {r["service.name"] for q in receiver.snapshot() for r in q.resources}
    assert names == {"env": {"mine"}, "default": {"rh-parallel-demo"}}


def test_without_an_endpoint_the_demo_exports_nothing(tmp_path: Path) -> None:
    report = tmp_path / "counts.json"
    done = subprocess.run(
        demo_with_counts(str(report), *FAST),
        env=clean_environment(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert lines(done.stderr) == []  # no attempt at localhost:4318, so no export errors
    assert json.loads(report.read_text())["ended"] == 0  # no exporter: nothing counted


def test_the_container_runs_the_demo_under_an_init() -> None:
    """As PID 1, a process ignores a SIGTERM it has no handler for yet (during start-up), and
    ``docker stop`` then kills it after the grace period, spans and all. Under an init, the
    signal reaches the demo; the exec form of ENTRYPOINT/CMD keeps a shell out of the way."""
    compose = yaml.safe_load((ROOT / "deploy" / "docker-compose.yml").read_text())
    assert compose["services"]["demo"]["init"] is True
    dockerfile = (ROOT / "Dockerfile").read_text().splitlines()
    for keyword in ("ENTRYPOINT", "CMD"):
        (line,) = [line for line in dockerfile if line.startswith(keyword + " ")]
        assert json.loads(line.removeprefix(keyword + " ")), line  # exec form: a JSON array
