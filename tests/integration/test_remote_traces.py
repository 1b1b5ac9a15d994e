"""Traces cross the executor boundary: spans made inside a process-pool worker and a Ray
worker arrive at the real OTLP receiver (Phoenix) as children of their item spans."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.integration.helpers import Phoenix, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

PROGRAM = textwrap.dedent(
    """
    import asyncio, concurrent.futures
    import ray
    from opentelemetry import trace
    from rh_parallel import ExecutionState
    from rh_parallel.ray import RayExecutor
    from rh_parallel.telemetry import configure

    def work(where):
        with trace.get_tracer("user-code").start_as_current_span(f"inside {where}"):
            return where

    async def main():
        state = ExecutionState()
        with concurrent.futures.ProcessPoolExecutor(1) as pool:
            async with state.parallel(1, name="remote", executor=pool) as p:
                p.add("in-process-pool", work, "process")
            await p.gather()
        async with state.parallel(1, name="remote", executor=RayExecutor(
                num_cpus=1, configure_telemetry=True)) as q:
            q.add("on-ray", work, "ray")
        await q.gather()

    handle = configure(service_name="remote-traces")
    ray.init(num_cpus=1, include_dashboard=False, logging_level="ERROR", log_to_driver=False)
    try:
        asyncio.run(main())
    finally:
        ray.shutdown()
        handle.shutdown()
    """
)


def test_spans_made_in_workers_are_children_of_their_item_spans(
    phoenix: Phoenix, tmp_path: Path
) -> None:
    project = "remote-traces"
    env = os.environ | {
        "OTEL_EXPORTER_OTLP_ENDPOINT": phoenix.http_endpoint,
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
        "OTEL_RESOURCE_ATTRIBUTES": f"openinference.project.name={project}",
        "OTEL_BSP_SCHEDULE_DELAY": "100",
    }
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [sys.executable, "-c", PROGRAM],
        env=env,
        cwd=root,
        capture_output=True,
        text=True,
        timeout=200,
    )
    assert done.returncode == 0, done.stderr[-3000:]

    def arrived() -> dict[str, dict[str, object]] | None:
        spans = {s["name"]: s for s in phoenix.spans(project)}
        wanted = {
            "execute_task in-process-pool",
            "execute_task on-ray",
            "inside process",
            "inside ray",
        }
        return spans if wanted <= set(spans) else None

    spans = wait_until(arrived, 60, "the worker spans to arrive")
    for item, inner in (("in-process-pool", "process"), ("on-ray", "ray")):
        item_span, worker_span = spans[f"execute_task {item}"], spans[f"inside {inner}"]
        assert worker_span["parent_id"] == item_span["context"]["span_id"]  # type: ignore[index]
        assert (
            worker_span["context"]["trace_id"]  # type: ignore[index]
            == item_span["context"]["trace_id"]  # type: ignore[index]
        )
