"""The OTel environment rules of ``configure()``, one case per rule, each in a fresh process
against a real receiver: Phoenix (OTLP over HTTP and gRPC) for whether spans arrive, and a small
OTLP/HTTP recorder (tests/integration/env_helpers.py) for what Phoenix does not show: the
request path, the headers, the resource, the time an export may take.

"Nothing arrives" is shown against a control: after the case, a run that does export goes to
the same Phoenix project, and once its spans are in, the case's would be too.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest

from tests.integration.env_helpers import otlp_recorder, run_python, script
from tests.integration.helpers import Phoenix, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

# One group with one item under configure(): the spans "invoke_workflow CASE" and
# "execute_task one"; the last line of stdout is what the process counted, as JSON.
PROGRAM = """
import asyncio, dataclasses, json, os
from rh_parallel import ExecutionState
from rh_parallel.telemetry import configure

handle = configure(service_name="matrix-fallback", **KWARGS)

async def main():
    state = ExecutionState()
    async with state.parallel(name=CASE) as group:
        group.add("one", asyncio.sleep(0))
    await state.aclose()

asyncio.run(main())
handle.shutdown(timeout=10)
print(json.dumps(
    dataclasses.asdict(handle.span_counts())
    | {"exporters": handle.exporters, "protocol": handle.protocol}
))
"""


def run_case(case: str, env: dict[str, str], kwargs: str = "") -> tuple[dict[str, Any], str, str]:
    """Run PROGRAM as ``case``; returns its counts, stdout and stderr."""
    done = run_python(script(f"CASE = {case!r}\nKWARGS = dict({kwargs})", PROGRAM), env)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    return json.loads(done.stdout.splitlines()[-1]), done.stdout, done.stderr


def project(name: str) -> dict[str, str]:
    """The resource attribute that files spans under a Phoenix project."""
    return {"OTEL_RESOURCE_ATTRIBUTES": f"openinference.project.name={name}"}


def names_in(phoenix: Phoenix, name: str) -> set[str]:
    try:
        return {span["name"] for span in phoenix.spans(name)}
    except AssertionError:  # the project does not exist yet
        return set()


def arrives(phoenix: Phoenix, name: str, case: str) -> None:
    wait_until(
        lambda: {f"invoke_workflow {case}", "execute_task one"} <= names_in(phoenix, name),
        30,
        f"the spans of {case} in Phoenix",
    )


def nothing_arrives(phoenix: Phoenix, name: str, case: str) -> None:
    """Nothing of ``case`` is in the project once a control run's spans are."""
    control = f"{case}-control"
    env = project(name) | {"OTEL_EXPORTER_OTLP_ENDPOINT": phoenix.http_endpoint}
    run_case(control, env)
    arrives(phoenix, name, control)
    assert f"invoke_workflow {case}" not in names_in(phoenix, name)


# -- OTEL_TRACES_EXPORTER ---------------------------------------------------------------------


Env = Callable[[Phoenix], dict[str, str]]


def http(phoenix: Phoenix) -> dict[str, str]:
    return {"OTEL_EXPORTER_OTLP_ENDPOINT": phoenix.http_endpoint}


def grpc(phoenix: Phoenix) -> dict[str, str]:
    return {"OTEL_EXPORTER_OTLP_ENDPOINT": phoenix.grpc_endpoint}


CASES: list[tuple[str, Env, bool, list[str], str | None]] = [
    # (case, environment, spans arrive, exporters, protocol)
    ("default-is-otlp", http, True, ["otlp"], "http/protobuf"),
    ("exporter-otlp", lambda p: http(p) | {"OTEL_TRACES_EXPORTER": "otlp"}, True, ["otlp"], None),
    ("exporter-none", lambda p: http(p) | {"OTEL_TRACES_EXPORTER": "none"}, False, [], None),
    (
        "exporter-console",
        lambda p: http(p) | {"OTEL_TRACES_EXPORTER": "console"},
        False,
        ["console"],
        None,
    ),
    (
        "exporter-list",
        lambda p: http(p) | {"OTEL_TRACES_EXPORTER": "console,otlp"},
        True,
        ["console", "otlp"],
        None,
    ),
    (
        "exporter-bogus",  # a warning, then the default: otlp
        lambda p: http(p) | {"OTEL_TRACES_EXPORTER": "bogus"},
        True,
        ["otlp"],
        None,
    ),
    # endpoints
    (
        "traces-endpoint-as-given",
        lambda p: {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": f"{p.http_endpoint}/v1/traces"},
        True,
        ["otlp"],
        None,
    ),
    (
        "traces-endpoint-no-path-appended",  # Phoenix's root is not its OTLP path
        lambda p: {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": p.http_endpoint},
        False,
        ["otlp"],
        None,
    ),
    (
        "traces-endpoint-over-generic",
        lambda p: {
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": f"{p.http_endpoint}/v1/traces",
            "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9",
        },
        True,
        ["otlp"],
        None,
    ),
    # protocols
    ("grpc", lambda p: grpc(p) | {"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, True, ["otlp"], "grpc"),
    (
        "grpc-traces-protocol",
        lambda p: (
            grpc(p)
            | {"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "grpc", "OTEL_EXPORTER_OTLP_PROTOCOL": "bogus"}
        ),
        True,
        ["otlp"],
        "grpc",
    ),
    (
        "grpc-any-case",  # enum values are case-insensitive (the spec)
        lambda p: grpc(p) | {"OTEL_EXPORTER_OTLP_PROTOCOL": "GRPC"},
        True,
        ["otlp"],
        "grpc",
    ),
    (
        "http-protobuf",
        lambda p: http(p) | {"OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"},
        True,
        ["otlp"],
        "http/protobuf",
    ),
    (
        "protocol-bogus",  # a warning, then the default http/protobuf
        lambda p: http(p) | {"OTEL_EXPORTER_OTLP_PROTOCOL": "bogus"},
        True,
        ["otlp"],
        "http/protobuf",
    ),
    # OTEL_SDK_DISABLED: only "true", in any case
    ("sdk-disabled-true", lambda p: http(p) | {"OTEL_SDK_DISABLED": "true"}, False, [], None),
    ("sdk-disabled-TRUE", lambda p: http(p) | {"OTEL_SDK_DISABLED": "TRUE"}, False, [], None),
    ("sdk-disabled-1", lambda p: http(p) | {"OTEL_SDK_DISABLED": "1"}, True, ["otlp"], None),
    (
        "sdk-disabled-false",
        lambda p: http(p) | {"OTEL_SDK_DISABLED": "false"},
        True,
        ["otlp"],
        None,
    ),
]


@pytest.mark.parametrize(
    ("case", "env", "arrive", "exporters", "protocol"), CASES, ids=[c[0] for c in CASES]
)
def test_each_environment_rule_against_phoenix(
    phoenix: Phoenix,
    case: str,
    env: Env,
    arrive: bool,
    exporters: list[str],
    protocol: str | None,
) -> None:
    name = f"matrix-{case}"
    counts, stdout, errors = run_case(case, project(name) | env(phoenix))
    assert counts["exporters"] == exporters
    if protocol is not None:
        assert counts["protocol"] == protocol
    if case == "traces-endpoint-no-path-appended":
        # handed to the exporter, which sent them to Phoenix's "/" as given, and was refused
        assert (counts["ended"], counts["exported"], counts["failed"]) == (2, 0, 2), errors
    else:
        # each exporter's pipeline counts the two spans (none, or disabled: no pipeline)
        assert counts["exported"] == counts["ended"] == 2 * len(exporters), errors
    if arrive:
        arrives(phoenix, name, case)
    else:
        nothing_arrives(phoenix, name, case)
    if "console" in exporters:
        assert f'"name": "invoke_workflow {case}"' in stdout
    if case.endswith("bogus"):
        assert "'bogus'" in errors and "ignored" in errors
    if case == "sdk-disabled-1":
        assert "OTEL_SDK_DISABLED='1' is not true or false" in errors


def test_arguments_win_over_the_environment(phoenix: Phoenix) -> None:
    name = "matrix-arguments"
    env = project(name) | {
        "OTEL_TRACES_EXPORTER": "none",
        "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9",
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
    }
    kwargs = f"endpoint={phoenix.grpc_endpoint!r}, protocol='grpc'"
    counts, _, _ = run_case("arguments", env, kwargs)
    assert (counts["exporters"], counts["protocol"]) == (["otlp"], "grpc")
    arrives(phoenix, name, "arguments")


# -- what Phoenix does not show: paths, headers, resource, timeouts ----------------------------


def test_a_per_signal_endpoint_is_used_as_given() -> None:
    with otlp_recorder(accept_path="/custom/path") as receiver:
        env = {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": f"{receiver.url}/custom/path"}
        counts, _, _ = run_case("as-given", env)
        paths = {request.path for request in receiver.snapshot()}
    assert paths == {"/custom/path"}
    assert counts["exported"] == 2


def test_the_generic_endpoint_gets_the_signal_path() -> None:
    with otlp_recorder(accept_path="/prefix/v1/traces") as receiver:
        env = {"OTEL_EXPORTER_OTLP_ENDPOINT": f"{receiver.url}/prefix"}
        counts, _, _ = run_case("generic", env)
        paths = {request.path for request in receiver.snapshot()}
    assert paths == {"/prefix/v1/traces"}
    assert counts["exported"] == 2


@pytest.mark.parametrize(
    ("env", "service"),
    [
        ({}, "matrix-fallback"),  # the argument, as nothing else names the service
        ({"OTEL_RESOURCE_ATTRIBUTES": "service.name=from-attributes,team=a"}, "from-attributes"),
        ({"OTEL_SERVICE_NAME": "from-service-name"}, "from-service-name"),
        (
            {
                "OTEL_SERVICE_NAME": "from-service-name",
                "OTEL_RESOURCE_ATTRIBUTES": "service.name=from-attributes",
            },
            "from-service-name",
        ),
    ],
    ids=["argument", "resource-attributes", "service-name", "service-name-first"],
)
def test_the_environment_names_the_service(env: dict[str, str], service: str) -> None:
    with otlp_recorder() as receiver:
        run_case("service", env | {"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url})
        resources = [r for request in receiver.snapshot() for r in request.resources]
    assert resources and {r["service.name"] for r in resources} == {service}
    if "team=a" in env.get("OTEL_RESOURCE_ATTRIBUTES", ""):
        assert {r["team"] for r in resources} == {"a"}


def test_headers_from_the_environment_are_sent() -> None:
    with otlp_recorder() as receiver:
        env = {
            "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url,
            "OTEL_EXPORTER_OTLP_HEADERS": "x-api-key=secret,x-tenant=generic",
            "OTEL_EXPORTER_OTLP_TRACES_HEADERS": "x-tenant=traces%20team",
        }
        run_case("headers", env)
        requests = receiver.snapshot()
    assert requests
    for request in requests:
        # the per-signal variable replaces the generic one (values are URL-decoded)
        assert request.headers.get("x-tenant") == "traces team"
        assert "x-api-key" not in request.headers


def test_generic_headers_are_sent_without_per_signal_ones() -> None:
    with otlp_recorder() as receiver:
        env = {
            "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url,
            "OTEL_EXPORTER_OTLP_HEADERS": "x-api-key=secret",
        }
        run_case("generic-headers", env)
        requests = receiver.snapshot()
    assert requests and all(r.headers.get("x-api-key") == "secret" for r in requests)


# PROGRAM's run, then one flush timed against a receiver that holds every answer for 30 s: an
# export gives up after its timeout.
TIMED_FLUSH = """
import asyncio, json, time
from opentelemetry import trace
from rh_parallel.telemetry import configure

handle = configure()
trace.get_tracer("timed").start_span("timed").end()
began = time.monotonic()
trace.get_tracer_provider().force_flush()
print(json.dumps({"seconds": time.monotonic() - began}))
"""


@pytest.mark.parametrize(
    ("timeout", "low", "high"),
    [
        ("1", 0.5, 4.0),  # the variable's 1 s, not configure()'s default of 5 s
        ("8", 6.0, 20.0),  # the variable's 8 s: not cut to configure()'s default either
        (None, 4.0, 8.0),  # no variable: configure()'s default of 5 s
    ],
    ids=["1s", "8s", "default"],
)
def test_the_export_timeout_of_the_environment_is_honoured(
    timeout: str | None, low: float, high: float
) -> None:
    with otlp_recorder(delay=30) as receiver:
        env = {"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url}
        if timeout is not None:
            env["OTEL_EXPORTER_OTLP_TIMEOUT"] = timeout  # seconds, as the Python SDK reads it
        began = time.monotonic()
        done = run_python(TIMED_FLUSH, env)
        elapsed = time.monotonic() - began
    assert done.returncode == 0, done.stderr
    seconds = json.loads(done.stdout.splitlines()[-1])["seconds"]
    assert low <= seconds <= high, (seconds, done.stderr)
    assert elapsed < 60
