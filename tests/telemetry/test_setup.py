"""configure() and the metrics endpoint. configure() sets process-wide state, so each case
runs in a fresh interpreter, with every OTEL_* variable of the test run removed.

What needs a receiver (spans arriving, endpoints, headers, timeouts) is in
tests/integration/test_env_matrix.py; here is the logic that needs none: which exporters and
protocol the environment selects, the resource, the batch sizing and the span-drop count.
"""

from __future__ import annotations

import asyncio
import errno
import json
import re
import urllib.request

import pytest

from rh_parallel.telemetry import start_metrics_server
from rh_parallel.testing import InMemoryTelemetry
from tests.integration.env_helpers import run_python, script

RUN_A_GROUP = """
import asyncio
from rh_parallel import ExecutionState

async def main():
    state = ExecutionState()
    async with state.parallel(name="configured") as p:
        p.add("one", asyncio.sleep(0))
    await state.aclose()
asyncio.run(main())
"""

# prints what configure() set up, as one JSON line; the handle stays in `handle`
DESCRIBE = """
import json
from rh_parallel.telemetry import configure
handle = configure(**KWARGS)
provider = handle.tracer_provider
print(json.dumps({
    "service": provider.resource.attributes.get("service.name") if provider else None,
    "resource": dict(provider.resource.attributes) if provider else None,
    "exporters": handle.exporters,
    "protocol": handle.protocol,
    "endpoint": handle.exporter_endpoint,
    "capacity": [p.capacity for p in handle._pipelines],
    "provider": type(provider).__name__ if provider else None,
}))
handle.shutdown(timeout=0.5)
"""


def describe(kwargs: str = "", **env: str) -> tuple[dict[str, object], str]:
    """What configure(KWARGS) set up under ``env``, and its stderr."""
    done = run_python(script(f"KWARGS = dict({kwargs})", DESCRIBE), env)
    assert done.returncode == 0, done.stderr
    (line,) = done.stdout.splitlines()
    return json.loads(line), done.stderr


def test_configure_sets_up_the_sdk_and_spans_flow() -> None:
    done = run_python(
        script(
            """
            from rh_parallel.telemetry import configure
            handle = configure(service_name="svc", console=True, traces_exporter="none")
            """,
            RUN_A_GROUP,
            """
            handle.shutdown()
            print("RESOURCE", handle.tracer_provider.resource.attributes["service.name"])
            print("COUNTS", handle.span_counts())
            """,
        )
    )
    assert done.returncode == 0, done.stderr
    assert '"name": "invoke_workflow configured"' in done.stdout
    assert '"name": "execute_task one"' in done.stdout
    assert "RESOURCE svc" in done.stdout
    assert "COUNTS SpanCounts(ended=2, exported=2, failed=0, dropped=0)" in done.stdout


# -- the resource: the environment names the service, the argument is the fallback ------------


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, "from-argument"),
        ({"OTEL_SERVICE_NAME": "from-service-name"}, "from-service-name"),
        ({"OTEL_RESOURCE_ATTRIBUTES": "service.name=from-attributes,team=a"}, "from-attributes"),
        (
            {
                "OTEL_SERVICE_NAME": "from-service-name",
                "OTEL_RESOURCE_ATTRIBUTES": "service.name=from-attributes",
            },
            "from-service-name",  # the spec: OTEL_SERVICE_NAME takes precedence
        ),
        ({"OTEL_RESOURCE_ATTRIBUTES": "team=a"}, "from-argument"),
        ({"OTEL_SERVICE_NAME": ""}, "from-argument"),  # empty is unset
    ],
    ids=["argument", "service-name", "attributes", "both", "other-attributes", "empty"],
)
def test_the_environment_names_the_service_over_the_argument(
    env: dict[str, str], expected: str
) -> None:
    described, _ = describe('service_name="from-argument", traces_exporter="none"', **env)
    assert described["service"] == expected


def test_without_a_name_anywhere_the_service_is_rh_parallel_and_attributes_stay() -> None:
    described, _ = describe(
        'traces_exporter="none"', OTEL_RESOURCE_ATTRIBUTES="deployment.environment=test"
    )
    assert described["service"] == "rh-parallel"
    resource = described["resource"]
    assert isinstance(resource, dict)
    assert resource["deployment.environment"] == "test"
    assert resource["telemetry.sdk.name"] == "opentelemetry"  # the SDK's own detectors ran


# -- exporter selection ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, ["otlp"]),  # the spec's default
        ("otlp", ["otlp"]),
        ("none", []),
        ("console", ["console"]),
        ("Console, OTLP,console", ["console", "otlp"]),  # case-insensitive, deduplicated
        ("", ["otlp"]),  # empty is unset
    ],
)
def test_otel_traces_exporter_selects_the_exporters(value: str | None, expected: list[str]) -> None:
    env = {} if value is None else {"OTEL_TRACES_EXPORTER": value}
    described, errors = describe(**env)
    assert described["exporters"] == expected
    assert "Traceback" not in errors


@pytest.mark.parametrize(
    ("value", "expected"), [("bogus", ["otlp"]), ("console,bogus", ["console"])]
)
def test_an_unknown_exporter_is_a_warning_and_ignored(value: str, expected: list[str]) -> None:
    described, errors = describe(OTEL_TRACES_EXPORTER=value)
    assert described["exporters"] == expected
    assert "unknown exporter(s) 'bogus' ignored" in errors
    assert "Traceback" not in errors


def test_arguments_win_over_the_environment() -> None:
    described, _ = describe(
        'traces_exporter="console", endpoint="http://127.0.0.1:9", protocol="grpc"',
        OTEL_TRACES_EXPORTER="none",
        OTEL_EXPORTER_OTLP_PROTOCOL="http/protobuf",
        OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:8",
    )
    # an endpoint is a request for OTLP, whatever OTEL_TRACES_EXPORTER says
    assert described["exporters"] == ["console", "otlp"]
    assert described["protocol"] == "grpc"
    assert described["endpoint"] == "127.0.0.1:9"  # the gRPC exporter keeps host:port


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ('protocol="thrift"', "use one of grpc, http/protobuf"),
        ('traces_exporter="bogus"', "unknown exporter(s) 'bogus'"),
        ('endpoint="http://x", span_exporter=object()', "not both"),
    ],
)
def test_bad_arguments_are_value_errors(kwargs: str, message: str) -> None:
    done = run_python(f"from rh_parallel.telemetry import configure\nconfigure({kwargs})")
    assert done.returncode == 1
    assert "ValueError" in done.stderr and message in done.stderr


# -- the OTLP exporter reads its own variables ----------------------------------------------


@pytest.mark.parametrize(
    ("env", "protocol", "endpoint"),
    [
        ({}, "http/protobuf", "http://localhost:4318/v1/traces"),
        (
            {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"},
            "http/protobuf",
            "http://collector:4318/v1/traces",  # the generic endpoint gets the signal path
        ),
        (
            {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/custom"},
            "http/protobuf",
            "http://collector:4318/custom",  # the per-signal one is used as given
        ),
        (
            {
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://traces:4318/v1/traces",
                "OTEL_EXPORTER_OTLP_ENDPOINT": "http://generic:4318",
            },
            "http/protobuf",
            "http://traces:4318/v1/traces",
        ),
        (
            {"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317"},
            "grpc",
            "c:4317",
        ),
        (
            {
                "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "grpc",
                "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
            },
            "grpc",
            "localhost:4317",
        ),
        ({"OTEL_EXPORTER_OTLP_PROTOCOL": "GRPC"}, "grpc", "localhost:4317"),  # enums: any case
    ],
    ids=["default", "generic", "per-signal", "per-signal-first", "grpc", "traces-protocol", "case"],
)
def test_the_exporter_follows_the_otlp_variables(
    env: dict[str, str], protocol: str, endpoint: str
) -> None:
    described, errors = describe(**env)
    assert (described["protocol"], described["endpoint"]) == (protocol, endpoint)
    assert "Traceback" not in errors and "ignored" not in errors


@pytest.mark.parametrize("value", ["bogus", "http/json", "thrift"])
def test_an_invalid_protocol_is_a_warning_and_the_default(value: str) -> None:
    described, errors = describe(OTEL_EXPORTER_OTLP_PROTOCOL=value)
    assert described["protocol"] == "http/protobuf"
    assert f"OTEL_EXPORTER_OTLP_PROTOCOL={value!r} ignored" in errors
    assert "Traceback" not in errors


def test_an_invalid_traces_protocol_falls_back_to_the_generic_one() -> None:
    described, errors = describe(
        OTEL_EXPORTER_OTLP_TRACES_PROTOCOL="bogus", OTEL_EXPORTER_OTLP_PROTOCOL="grpc"
    )
    assert described["protocol"] == "grpc"
    assert "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL='bogus' ignored" in errors


def test_an_exporter_the_environment_breaks_is_built_with_defaults() -> None:
    # the gRPC exporter raises on a timeout it cannot parse and on an unknown compression
    described, errors = describe(
        OTEL_EXPORTER_OTLP_PROTOCOL="grpc",
        OTEL_EXPORTER_OTLP_TRACES_TIMEOUT="soon",
        OTEL_EXPORTER_OTLP_TRACES_COMPRESSION="zstd-please",
    )
    assert described["exporters"] == ["otlp"]
    assert "could not be set up from the environment" in errors
    assert "Traceback" not in errors


def test_a_timeout_in_milliseconds_gets_a_word_of_warning() -> None:
    _, errors = describe(OTEL_EXPORTER_OTLP_TIMEOUT="10000")
    assert "OTEL_EXPORTER_OTLP_TIMEOUT=10000 is read by the Python OTLP exporters in seconds" in (
        errors
    )


# -- OTEL_SDK_DISABLED: only "true", in any case --------------------------------------------


@pytest.mark.parametrize("value", ["true", "TRUE", "True", " true "])
def test_sdk_disabled_true_leaves_tracing_off(value: str) -> None:
    done = run_python(
        script(
            """
            from opentelemetry import trace
            from rh_parallel.telemetry import configure
            handle = configure(console=True)
            """,
            RUN_A_GROUP,
            """
            print(type(trace.get_tracer_provider()).__name__, handle.tracer_provider)
            """,
        ),
        {"OTEL_SDK_DISABLED": value},
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["ProxyTracerProvider", "None"]


@pytest.mark.parametrize(("value", "warned"), [("1", True), ("yes", True), ("false", False)])
def test_other_values_of_sdk_disabled_leave_it_enabled(value: str, warned: bool) -> None:
    described, errors = describe('traces_exporter="none"', OTEL_SDK_DISABLED=value)
    assert described["provider"] == "TracerProvider"
    assert ("is not true or false" in errors) is warned


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


# -- the batch processor: sized for bursts, OTEL_BSP_* respected -----------------------------


@pytest.mark.parametrize(
    ("env", "capacity", "warning"),
    [
        ({}, 32768, None),
        ({"OTEL_BSP_MAX_QUEUE_SIZE": "100"}, 100, None),  # the batch shrinks to fit
        ({"OTEL_BSP_MAX_QUEUE_SIZE": "lots"}, 32768, "OTEL_BSP_MAX_QUEUE_SIZE='lots'"),
        ({"OTEL_BSP_MAX_QUEUE_SIZE": "-5"}, 32768, "OTEL_BSP_MAX_QUEUE_SIZE='-5'"),
        (
            {"OTEL_BSP_MAX_QUEUE_SIZE": "100", "OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "500"},
            100,
            "OTEL_BSP_MAX_EXPORT_BATCH_SIZE=500 is larger than the queue",
        ),
        ({"OTEL_BSP_SCHEDULE_DELAY": "0"}, 32768, "OTEL_BSP_SCHEDULE_DELAY='0'"),
    ],
    ids=["default", "small", "not-a-number", "negative", "batch-too-big", "zero-delay"],
)
def test_the_queue_is_sized_for_bursts_unless_otel_bsp_says(
    env: dict[str, str], capacity: int, warning: str | None
) -> None:
    described, errors = describe(**env)
    assert described["capacity"] == [capacity]
    if warning is None:
        assert "OTEL_BSP" not in errors
    else:
        assert warning in errors
    assert "Traceback" not in errors


BURST = """
import asyncio, logging, sys, time
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from prometheus_client import REGISTRY

class SlowExporter(SpanExporter):
    '''Alive but slow-ish: every batch takes DELAY seconds.'''
    def __init__(self):
        self.received = 0
    def export(self, spans):
        time.sleep(DELAY)
        self.received += len(spans)
        return SpanExportResult.SUCCESS
    def shutdown(self):
        pass

ends = 0
class CountEnds:
    def on_start(self, span, parent_context=None): pass
    def _on_ending(self, span): pass
    def on_end(self, span):
        global ends
        ends += 1
    def shutdown(self): pass
    def force_flush(self, timeout_millis=30000): return True

from rh_parallel import ExecutionState
from rh_parallel.telemetry import configure, spans_dropped
exporter = SlowExporter()
handle = configure(service_name="burst", span_exporter=exporter)
handle.tracer_provider.add_span_processor(CountEnds())  # an independent count of ended spans

async def main():
    state = ExecutionState()
    async with state.parallel(name="burst") as group:
        for _ in range(ITEMS):
            group.add(asyncio.sleep(0))
    await state.aclose()

asyncio.run(main())
handle.shutdown(timeout=20)
counts = handle.span_counts()
print(json.dumps({
    "ends": ends, "received": exporter.received, "ended": counts.ended,
    "exported": counts.exported, "dropped": counts.dropped, "module": spans_dropped(),
    "metric": REGISTRY.get_sample_value("rh_parallel_spans_dropped_total"),
}))
"""


def burst(delay: float, items: int = 20_000, **env: str) -> tuple[dict[str, int], str]:
    done = run_python(script(f"import json\nDELAY = {delay}\nITEMS = {items}", BURST), env)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1]), done.stderr


def test_a_burst_past_a_tiny_queue_drops_spans_and_counts_each_one() -> None:
    result, errors = burst(0.02, OTEL_BSP_MAX_QUEUE_SIZE="100")
    assert result["ends"] == result["ended"] == 20_001  # 20,000 items and their group
    assert result["dropped"] > 0
    # every span that ended was either delivered or counted as dropped: nothing silent
    assert result["received"] + result["dropped"] == result["ended"]
    assert result["received"] == result["exported"]
    assert result["metric"] == result["module"] == result["dropped"]
    # the final warning tells the exact number; the rate-limited ones are few
    assert f"{result['dropped']} of 20001 span(s) of the custom exporter were dropped" in errors
    warnings = [line for line in errors.splitlines() if "dropped" in line]
    assert 2 <= len(warnings) <= 4, errors
    assert "Queue full" not in errors  # the SDK's own (silent-count) path is never reached


def test_the_default_sizing_takes_a_burst_without_dropping() -> None:
    result, errors = burst(0.05)
    assert result["ends"] == result["ended"] == result["received"] == 20_001
    assert result["dropped"] == result["metric"] == 0
    assert "dropped" not in errors


def test_spans_ended_after_shutdown_are_counted_as_dropped() -> None:
    done = run_python(
        script(
            """
            from opentelemetry import trace
            from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
                InMemorySpanExporter,
            )
            from rh_parallel.telemetry import configure, spans_dropped
            exporter = InMemorySpanExporter()
            handle = configure(span_exporter=exporter)
            tracer = trace.get_tracer("t")
            tracer.start_span("before").end()
            handle.shutdown(timeout=5)
            tracer.start_span("after").end()
            print(len(exporter.get_finished_spans()), spans_dropped(), handle.span_counts())
            """
        )
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split(maxsplit=2)[:2] == ["1", "1"]
    assert "ended after telemetry shut down" in done.stderr


def test_shutdown_is_bounded_when_the_exporter_hangs() -> None:
    done = run_python(
        script(
            """
            import threading, time
            from opentelemetry import trace
            from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
            from rh_parallel.telemetry import configure

            class Stuck(SpanExporter):
                def export(self, spans):
                    threading.Event().wait(60)
                    return SpanExportResult.SUCCESS
                def shutdown(self):
                    pass

            handle = configure(span_exporter=Stuck())
            trace.get_tracer("t").start_span("stuck").end()
            began = time.monotonic()
            handle.shutdown(timeout=0.5)
            print(round(time.monotonic() - began))
            """
        )
    )
    assert done.returncode == 0, done.stderr
    assert int(done.stdout) <= 2  # 2 x timeout, not the exporter's 60 s
    assert "may not have been exported" in done.stderr


# -- the metrics endpoint -------------------------------------------------------------------


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


def test_the_span_drop_counter_is_served_from_the_start() -> None:
    done = run_python(
        script(
            """
            import urllib.request
            from rh_parallel.telemetry import configure
            handle = configure(traces_exporter="none", metrics_port=0)
            with urllib.request.urlopen(handle.metrics_server.url, timeout=5) as response:
                print(response.read().decode())
            handle.shutdown()
            """
        )
    )
    assert done.returncode == 0, done.stderr
    assert re.search(r"^rh_parallel_spans_dropped_total 0\.0$", done.stdout, re.MULTILINE)
    assert "# TYPE rh_parallel_spans_dropped_total counter" in done.stdout


def _get(url: str, accept: str) -> str:
    request = urllib.request.Request(url, headers={"Accept": accept})
    with urllib.request.urlopen(request, timeout=5) as response:
        return str(response.read().decode())


def test_metrics_server_checks_its_port() -> None:
    with pytest.raises(ValueError, match="port=70000"):
        start_metrics_server(port=70000)


def test_a_metrics_port_in_use_names_the_port_and_the_fix() -> None:
    first = start_metrics_server(port=0)
    try:
        with pytest.raises(
            OSError, match=rf"port {first.port} on 127.0.0.1 is in use.*port 0"
        ) as raised:
            start_metrics_server(port=first.port)  # configure(metrics_port=...) calls it too
        assert raised.value.errno == errno.EADDRINUSE  # still the OSError programs test for
    finally:
        first.close()
