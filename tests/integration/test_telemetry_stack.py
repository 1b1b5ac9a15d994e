"""The demo, run as a subprocess, observed by a real Prometheus and a real OTLP receiver."""

from __future__ import annotations

import os
import re
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.integration.helpers import (
    Phoenix,
    Prometheus,
    demo_command,
    free_port,
    wait_until,
)

pytestmark = pytest.mark.integration

COUNTS = re.compile(r"documents: (\d+) completed, (\d+) failed, (\d+) total")


def run_demo(
    *args: str, env: dict[str, str] | None = None, timeout: float = 90
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        demo_command(*args),
        env=os.environ | (env or {}),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def by_name(spans: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    for span in spans:
        found.setdefault(span["name"], []).append(span)
    return found


def test_prometheus_scrapes_the_demo_and_exemplars_point_at_exported_spans(
    phoenix: Phoenix, prometheus: Callable[[list[str]], Prometheus], tmp_path: Path
) -> None:
    metrics_port = free_port()
    started = time.time()
    output = (tmp_path / "demo.out").open("w+")
    demo = subprocess.Popen(
        demo_command(
            "--duration",
            "20",
            "--latency",
            "0.05",
            "--docs",
            "6",
            "--workers",
            "3",
            "--metrics-port",
            str(metrics_port),
            "--otlp-endpoint",
            phoenix.http_endpoint,
            "--mode",
            "collapsed",
        ),
        env=os.environ | {"OTEL_RESOURCE_ATTRIBUTES": "openinference.project.name=scraped"},
        stdout=output,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        server = prometheus([f"127.0.0.1:{metrics_port}"])
        series = wait_until(
            lambda: server.query('rh_parallel_events_total{group="Document Processing"} > 0'),
            40,
            "the demo's series in Prometheus",
        )
        kinds = {s["metric"]["kind"] for s in series}
        assert kinds == {"tool"}
        assert {s["metric"]["outcome"] for s in series} <= {"completed", "failed", "skipped"}
        assert all(s["metric"]["job"] == "rh-parallel" for s in series)
        # asked while the demo still runs: a target that went away reads stale
        for name in (
            "rh_parallel_groups_total",
            "rh_parallel_queue_wait_seconds_count",
            "rh_parallel_workers_limit",
            "rh_parallel_groups_active",
            "rh_parallel_events_in_flight",
            "rh_parallel_group_duration_seconds_count",
        ):
            assert server.query(name), f"{name} never arrived"
        llm = wait_until(
            lambda: server.query('rh_parallel_events_total{kind="llm"} > 0'), 20, "LLM events"
        )
        assert {s["metric"]["group"] for s in llm} == {"analyze"}  # bounded group names
        exemplars = wait_until(
            lambda: [
                e
                for group in server.exemplars(
                    "rh_parallel_event_duration_seconds_bucket", started - 5
                )
                for e in group["exemplars"]
            ],
            40,
            "exemplars with trace ids",
        )
        trace_ids = {e["labels"]["trace_id"] for e in exemplars}
        demo.wait(timeout=60)
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait()
        output.seek(0)
        printed = output.read()
        output.close()
    assert demo.returncode == 0, printed[-3000:]
    assert COUNTS.search(printed)
    shared = wait_until(
        lambda: trace_ids & {s["context"]["trace_id"] for s in phoenix.spans("scraped")},
        30,
        "an exemplar's trace among the exported spans",
    )
    assert shared


@pytest.mark.parametrize("protocol", ["http/protobuf", "grpc"])
def test_demo_spans_arrive_intact_over_otlp(phoenix: Phoenix, protocol: str) -> None:
    project = f"demo-{protocol.replace('/', '-')}"
    endpoint = phoenix.grpc_endpoint if protocol == "grpc" else phoenix.http_endpoint
    done = run_demo(
        "--docs",
        "3",
        "--workers",
        "2",
        "--fail-rate",
        "0",
        "--latency",
        "0.02",
        "--otlp-endpoint",
        endpoint,
        "--otlp-protocol",
        protocol,
        "--mode",
        "json",
        env={"OTEL_RESOURCE_ATTRIBUTES": f"openinference.project.name={project}"},
    )
    assert done.returncode == 0, done.stderr

    def complete() -> list[dict[str, Any]] | None:
        # the receiver ingests asynchronously: wait for the whole run, root span included
        spans = phoenix.spans(project)
        names = by_name(spans)
        expected = ("invoke_agent orchestrator", "invoke_workflow Document Processing")
        ready = all(n in names for n in expected) and (len(names.get("chat gpt-4o-mini", [])) == 3)
        return spans if ready else None

    spans = wait_until(complete, 30, f"every span of the run over {protocol}")
    by_id = {s["context"]["span_id"]: s for s in spans}
    names = by_name(spans)
    (root,) = names["invoke_agent orchestrator"]
    assert root["parent_id"] is None
    (group,) = names["invoke_workflow Document Processing"]
    assert group["parent_id"] == root["context"]["span_id"]
    attributes = group["attributes"]
    assert attributes["rh_parallel.group_size"] == 4
    assert attributes["rh_parallel.max_workers"] == 2
    assert attributes["gen_ai.operation.name"] == "invoke_workflow"
    assert attributes["gen_ai.workflow.name"] == "Document Processing"
    run_id = attributes["rh_parallel.run_id"]
    assert root["attributes"]["rh_parallel.run_id"] == run_id
    assert root["attributes"]["gen_ai.provider.name"] == "_OTHER"  # the demo agent names none
    documents = names["execute_tool process_document"]
    assert len(documents) == 3
    assert sorted(d["attributes"]["rh_parallel.parallel_index"] for d in documents) == [0, 1, 2]
    for document in documents:
        assert document["parent_id"] == group["context"]["span_id"]
        assert document["attributes"]["rh_parallel.group_id"] == attributes["rh_parallel.group_id"]
        assert document["attributes"]["gen_ai.tool.name"] == "process_document"
        assert document["attributes"]["rh_parallel.run_id"] == run_id
    nested = names["invoke_workflow analyze"][0]
    assert by_id[nested["parent_id"]]["name"] == "execute_tool process_document"
    # chat spans are named by the model the LLM actor requests, not the actor's name
    summaries = [
        s for s in names["chat gpt-4o-mini"] if s["parent_id"] == nested["context"]["span_id"]
    ]
    assert len(summaries) == 1
    assert summaries[0]["attributes"]["gen_ai.request.model"] == "gpt-4o-mini"
    assert summaries[0]["attributes"]["gen_ai.provider.name"] == "openai"
    assert summaries[0]["attributes"]["gen_ai.operation.name"] == "chat"
    assert len(names["chat gpt-4.1-nano"]) == 3  # the classifier
    assert {s["context"]["trace_id"] for s in spans} == {root["context"]["trace_id"]}


def test_demo_with_the_collector_down_still_finishes_promptly() -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    began = time.monotonic()
    done = run_demo(
        "--docs",
        "5",
        "--latency",
        "0.02",
        "--otlp-endpoint",
        dead,
        "--mode",
        "collapsed",
        timeout=60,
    )
    elapsed = time.monotonic() - began
    assert done.returncode == 0, done.stderr
    completed, failed, total = map(int, COUNTS.search(done.stdout).groups())  # type: ignore[union-attr]
    assert total == 5 and completed + failed == 5
    assert "Failed to export" in done.stderr or "Transient error" in done.stderr
    assert elapsed < 30
