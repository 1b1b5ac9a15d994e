"""configure() and the metrics endpoint. configure() sets process-wide state, so each case
runs in a fresh interpreter."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
import urllib.request

from rh_parallel.telemetry import start_metrics_server
from rh_parallel.testing import InMemoryTelemetry


def run_python(*parts: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    code = "\n".join(textwrap.dedent(part) for part in parts)
    return subprocess.run(
        [sys.executable, "-W", "error", "-c", code],
        env=clean | env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


RUN_A_GROUP = """
import asyncio
from rh_parallel import ExecutionState

async def main():
    state = ExecutionState()
    async with state.parallel(name="configured") as p:
        p.add("one", asyncio.sleep(0))
asyncio.run(main())
"""


def test_configure_sets_up_the_sdk_and_spans_flow() -> None:
    done = run_python(
        """
        import logging
        from rh_parallel.telemetry import configure
        handle = configure(service_name="svc", console=True)
        """,
        RUN_A_GROUP,
        """
        handle.shutdown()
        print("RESOURCE", handle.tracer_provider.resource.attributes["service.name"])
        """,
    )
    assert done.returncode == 0, done.stderr
    assert '"name": "invoke_workflow configured"' in done.stdout
    assert '"name": "execute_task one"' in done.stdout
    assert "RESOURCE svc" in done.stdout


def test_configure_honours_otel_variables() -> None:
    done = run_python(
        """
        from rh_parallel.telemetry import configure
        handle = configure()
        print(handle.tracer_provider.resource.attributes["service.name"])
        print(handle.exporter_endpoint, handle.protocol)
        handle.shutdown(timeout=1)
        """,
        OTEL_SERVICE_NAME="from-env",
        OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:9",
        OTEL_EXPORTER_OTLP_PROTOCOL="grpc",
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["from-env", "http://127.0.0.1:9", "grpc"]


def test_configure_keeps_the_applications_provider() -> None:
    done = run_python(
        """
        import logging
        logging.basicConfig(level=logging.INFO)
        from opentelemetry import trace
        from opentelemetry.sdk.trace import TracerProvider
        mine = TracerProvider()
        trace.set_tracer_provider(mine)
        from rh_parallel.telemetry import configure
        handle = configure(service_name="ignored")
        print(trace.get_tracer_provider() is mine, handle.owns_provider)
        """
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["True", "False"]
    assert "already set" in done.stderr


def test_sdk_disabled_leaves_tracing_off() -> None:
    done = run_python(
        """
        from opentelemetry import trace
        from rh_parallel.telemetry import configure
        handle = configure(console=True)
        print(type(trace.get_tracer_provider()).__name__, handle.tracer_provider)
        """,
        RUN_A_GROUP,
        OTEL_SDK_DISABLED="true",
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["ProxyTracerProvider", "None"]


def test_bad_protocol_names_the_choices() -> None:
    done = run_python(
        """
        from rh_parallel.telemetry import configure
        configure(protocol="thrift")
        """
    )
    assert "use one of grpc, http/protobuf" in done.stderr


async def test_metrics_endpoint_serves_text_and_openmetrics_with_exemplars() -> None:
    telemetry = InMemoryTelemetry()
    state = telemetry.state()
    async with state.parallel(name="served") as p:
        p.add(asyncio.sleep(0))
    server = start_metrics_server(port=0, registry=telemetry.registry)
    try:
        assert server.server.server_address[0] == "127.0.0.1"
        assert server.url == f"http://127.0.0.1:{server.port}/metrics"
        text = await asyncio.to_thread(_get, server.url, "text/plain")
        assert (
            'rh_parallel_events_total{group="served",kind="task",outcome="completed"} 1.0' in text
        )
        assert "# {trace_id=" not in text
        openmetrics = await asyncio.to_thread(
            _get, server.url, "application/openmetrics-text; version=1.0.0"
        )
        assert "# {trace_id=" in openmetrics
        assert openmetrics.rstrip().endswith("# EOF")
    finally:
        server.close()


def _get(url: str, accept: str) -> str:
    request = urllib.request.Request(url, headers={"Accept": accept})
    with urllib.request.urlopen(request, timeout=5) as response:
        return str(response.read().decode())


def test_metrics_server_checks_its_port() -> None:
    import pytest

    with pytest.raises(ValueError, match="port=70000"):
        start_metrics_server(port=70000)
