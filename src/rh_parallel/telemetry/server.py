"""The ``/metrics`` endpoint: Prometheus text, or OpenMetrics with exemplars when asked."""

from __future__ import annotations

import errno
import logging
import threading
from dataclasses import dataclass
from wsgiref.simple_server import WSGIServer

from prometheus_client import REGISTRY, CollectorRegistry, start_http_server

__all__ = ["MetricsServer", "start_metrics_server"]

logger = logging.getLogger("rh_parallel.telemetry")


@dataclass
class MetricsServer:
    """A running metrics endpoint; ``close()`` stops it."""

    server: WSGIServer
    """The HTTP server (prometheus_client's)."""
    thread: threading.Thread
    """The daemon thread that serves it."""
    addr: str
    """The address it listens on, as given: ``127.0.0.1`` unless told otherwise."""
    port: int
    """The port it listens on: the free one picked when ``port=0`` was asked."""

    @property
    def url(self) -> str:
        """The endpoint to scrape, e.g. ``http://127.0.0.1:9464/metrics`` (an IPv6 address in
        brackets)."""
        host = f"[{self.addr}]" if ":" in self.addr else self.addr
        return f"http://{host}:{self.port}/metrics"

    def close(self) -> None:
        """Stop serving and free the port (waits up to 5 s for the thread to end)."""
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def start_metrics_server(
    port: int = 9464, addr: str = "127.0.0.1", registry: CollectorRegistry = REGISTRY
) -> MetricsServer:
    """Serve ``registry`` on ``http://addr:port/metrics`` from a daemon thread.

    Binds to 127.0.0.1 unless told otherwise (pass ``addr="0.0.0.0"`` to let a Prometheus
    in a container scrape it). ``port=0`` picks a free port (read it from ``.port``). A
    scraper that asks for OpenMetrics (Prometheus does) gets exemplars with ``trace_id``.
    A port in use raises ``OSError`` (``errno.EADDRINUSE``) naming the port and the fix.
    """
    if not 0 <= port <= 65535:
        raise ValueError(f"port={port} must be from 0 to 65535 (0 picks a free one)")
    try:
        server, thread = start_http_server(port, addr=addr, registry=registry)
    except OSError as exc:
        if exc.errno != errno.EADDRINUSE:
            raise
        raise OSError(
            exc.errno,
            f"metrics port {port} on {addr} is in use (by another program serving metrics, "
            "such as the compose stack's demo?); pass port 0 for a free one (read it from "
            ".url) or another port",
        ) from exc
    bound = server.server_address[1]
    logger.info("serving metrics on %s:%s/metrics", addr, bound)
    return MetricsServer(server, thread, addr, int(bound))
