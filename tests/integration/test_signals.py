"""SIGTERM, as ``docker stop`` sends it, against a real OTLP receiver (Phoenix): the demo
cancels its run, exports every span it ended (the last batch included) and exits 143."""

from __future__ import annotations

import json
import signal
import subprocess
from pathlib import Path

import pytest

from tests.integration.env_helpers import clean_environment, demo_with_counts
from tests.integration.helpers import Phoenix, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]


@pytest.mark.parametrize("protocol", ["http/protobuf", "grpc"])
def test_sigterm_flushes_every_span_to_the_receiver_and_exits_143(
    phoenix: Phoenix, protocol: str, tmp_path: Path
) -> None:
    project = f"sigterm-{protocol.replace('/', '-')}"
    endpoint = phoenix.grpc_endpoint if protocol == "grpc" else phoenix.http_endpoint
    report = tmp_path / "counts.json"
    env = clean_environment(
        OTEL_EXPORTER_OTLP_ENDPOINT=endpoint,
        OTEL_EXPORTER_OTLP_PROTOCOL=protocol,
        OTEL_RESOURCE_ATTRIBUTES=f"openinference.project.name={project}",
    )
    args = ("--loop", "--latency", "0.02", "--docs", "4", "--mode", "collapsed")
    with (tmp_path / "out").open("wb") as out, (tmp_path / "err").open("wb") as err:
        process = subprocess.Popen(
            demo_with_counts(str(report), *args), env=env, stdout=out, stderr=err
        )
    try:
        # some spans are in, more are queued (the processor exports once a second): stop now
        wait_until(lambda: phoenix.spans(project), 60, "a first batch in Phoenix")
        process.send_signal(signal.SIGTERM)
        status = process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    errors = (tmp_path / "err").read_text()
    assert status == 143, errors
    assert "Traceback" not in errors and errors.strip() == "", errors
    counts = json.loads(report.read_text())
    assert counts["ended"] > 0
    assert counts["exported"] == counts["ended"] and counts["dropped"] == counts["failed"] == 0

    def all_in() -> list[dict[str, object]] | None:
        spans = phoenix.spans(project)
        return spans if len(spans) >= counts["ended"] else None

    spans = wait_until(all_in, 60, f"all {counts['ended']} spans of the run in Phoenix")
    assert len(spans) == counts["ended"]  # every span ended, none twice
    assert len({s["context"]["span_id"] for s in spans}) == counts["ended"]
    # the run was cancelled: the spans of its last round ended last, in the final flush
    cancelled = {s["name"] for s in spans if s["attributes"].get("error.type") == "cancelled"}
    assert cancelled, sorted({(s["name"], s["status_code"]) for s in spans})
