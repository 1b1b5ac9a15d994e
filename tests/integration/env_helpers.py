"""Helpers for the tests of ``configure()`` and the OTel environment: a tiny OTLP/HTTP receiver
that records what each request carried (path, headers, resource, spans), and how to run a
program with a clean ``OTEL_*`` environment.

Phoenix is the real receiver of the integration tests, but it does not show request paths,
headers or resource attributes; this one does, for the cases that need them.
"""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
import textwrap
import threading
import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

__all__ = [
    "DEMO_WITH_COUNTS",
    "OtlpRecorder",
    "Request",
    "clean_environment",
    "demo_with_counts",
    "otlp_recorder",
    "run_python",
    "script",
    "wait_for",
]


@dataclass
class Request:
    """One POST the recorder received."""

    path: str
    headers: dict[str, str]
    span_names: list[str] = field(default_factory=list)
    resources: list[dict[str, Any]] = field(default_factory=list)


class OtlpRecorder:
    """An OTLP/HTTP receiver on 127.0.0.1: answers ``accept_path`` (default ``/v1/traces``)
    with success and any other path with 404, recording every request either way. ``delay``
    holds each answer that many seconds (an export timeout shows against it)."""

    def __init__(self, accept_path: str = "/v1/traces", delay: float = 0.0) -> None:
        self.accept_path = accept_path
        self.delay = delay
        self.requests: list[Request] = []
        self._lock = threading.Lock()
        self._closing = threading.Event()
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                encoding = (self.headers.get("Content-Encoding") or "").lower()
                if encoding == "gzip":
                    body = gzip.decompress(body)
                elif encoding == "deflate":
                    body = zlib.decompress(body)
                request = Request(self.path, {k.lower(): v for k, v in self.headers.items()})
                if self.path == recorder.accept_path:
                    decoded = ExportTraceServiceRequest()
                    decoded.ParseFromString(body)
                    for resource_spans in decoded.resource_spans:
                        attributes = {
                            a.key: a.value.string_value for a in resource_spans.resource.attributes
                        }
                        request.resources.append(attributes)
                        for scope in resource_spans.scope_spans:
                            request.span_names.extend(s.name for s in scope.spans)
                with recorder._lock:
                    recorder.requests.append(request)
                if recorder.delay:
                    recorder._closing.wait(recorder.delay)
                if self.path != recorder.accept_path:
                    self.send_error(404)
                    return
                answer = ExportTraceServiceResponse().SerializeToString()
                try:
                    self.send_response(200)
                    self.send_header("Content-Type", "application/x-protobuf")
                    self.send_header("Content-Length", str(len(answer)))
                    self.end_headers()
                    self.wfile.write(answer)
                except OSError:
                    pass  # the client gave up waiting (its timeout): nothing to answer

            def log_message(self, format: str, *args: Any) -> None:
                pass  # quiet

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        self._closing.set()
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=10)

    def snapshot(self) -> list[Request]:
        with self._lock:
            return list(self.requests)

    def span_names(self) -> list[str]:
        return [name for request in self.snapshot() for name in request.span_names]


@contextmanager
def otlp_recorder(accept_path: str = "/v1/traces", delay: float = 0.0) -> Iterator[OtlpRecorder]:
    recorder = OtlpRecorder(accept_path, delay)
    recorder.start()
    try:
        yield recorder
    finally:
        recorder.close()


def script(*parts: str) -> str:
    """Python source from dedented parts."""
    return "\n".join(textwrap.dedent(part) for part in parts)


def run_python(
    code: str, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter (warnings are errors) with every ``OTEL_*`` variable
    of this process removed, then ``env`` added."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    return subprocess.run(
        [sys.executable, "-W", "error", "-c", code],
        env=clean | (env or {}),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def wait_for(check: Any, timeout: float, what: str) -> Any:
    """Poll ``check`` until it returns something true (bounded)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


# ``python -c DEMO_WITH_COUNTS REPORT ARGS...``: ``rh-parallel demo ARGS`` as from a terminal
# (SIGINT at Python's default), which then writes to REPORT the span counts of the telemetry it
# configured (ended, exported, failed, dropped), as JSON: what the process knows it ended, for
# comparing with what a receiver got.
DEMO_WITH_COUNTS = """
import dataclasses, json, signal, sys
signal.signal(signal.SIGINT, signal.default_int_handler)
import rh_parallel.cli.demo as demo

handles = []
configure = demo.configure

def capture(*args, **kwargs):
    handle = configure(*args, **kwargs)
    handles.append(handle)
    return handle

demo.configure = capture
status = demo.main(sys.argv[2:])
with open(sys.argv[1], "w") as report:
    json.dump(dataclasses.asdict(handles[0].span_counts()) if handles else None, report)
sys.exit(status)
"""


def demo_with_counts(report: str, *args: str) -> list[str]:
    """The command line of :data:`DEMO_WITH_COUNTS`."""
    return [sys.executable, "-c", DEMO_WITH_COUNTS, report, *args]


def clean_environment(**env: str) -> dict[str, str]:
    """This process's environment without its ``OTEL_*`` variables, plus ``env``."""
    return {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")} | env
