"""The deploy stack and dashboards: parsed by real tools, pinned, bound to loopback, consistent."""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
from typing import Any

import pytest
import yaml

from tests.deploy.helpers import DASHBOARDS, ROOT, load_dashboards, panel_queries

COMPOSE = ROOT / "deploy" / "docker-compose.yml"
DATASOURCES = ROOT / "grafana" / "provisioning" / "datasources" / "datasources.yml"


def compose_config() -> dict[str, Any]:
    binary = shutil.which("docker-compose")
    if binary is None:
        pytest.fail("docker-compose is not installed; run scripts/test.sh, which installs it")
    done = subprocess.run(
        [binary, "-f", str(COMPOSE), "config"],
        capture_output=True,
        text=True,
        check=False,
        cwd=COMPOSE.parent,
    )
    assert done.returncode == 0, done.stderr
    parsed: dict[str, Any] = yaml.safe_load(done.stdout)
    return parsed


def test_compose_file_parses_and_pins_its_images() -> None:
    services = compose_config()["services"]
    assert set(services) == {"jaeger", "prometheus", "grafana", "demo"}
    for name, service in services.items():
        image = service["image"]
        assert re.fullmatch(r"[\w./-]+:v?\d+(\.\d+)+(-[\w.]+)?", image), (name, image)
    assert services["jaeger"]["image"].startswith("jaegertracing/jaeger:2.")
    assert "--enable-feature=exemplar-storage" in services["prometheus"]["command"]
    assert services["demo"]["build"]["dockerfile"] == "Dockerfile"
    assert (ROOT / "Dockerfile").is_file()


def test_every_published_port_is_on_loopback() -> None:
    for name, service in compose_config()["services"].items():
        for port in service.get("ports", []):
            host_ip = port["host_ip"] if isinstance(port, dict) else str(port).split(":")[0]
            assert host_ip == "127.0.0.1", (name, port)


def test_grafana_is_anonymous_viewer_only() -> None:
    env = compose_config()["services"]["grafana"]["environment"]
    assert env["GF_AUTH_ANONYMOUS_ENABLED"] == "true"
    assert env["GF_AUTH_ANONYMOUS_ORG_ROLE"] == "Viewer"


def test_prometheus_config_passes_promtool() -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.fail("promtool (Debian package prometheus) is not installed")
    done = subprocess.run(
        [promtool, "check", "config", str(ROOT / "deploy" / "prometheus.yml")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_dashboards_are_what_the_foundation_sdk_generates() -> None:
    spec = importlib.util.spec_from_file_location("build", ROOT / "grafana" / "build_dashboards.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    generated = module.render()
    committed = {p.name: p.read_text() for p in DASHBOARDS.glob("*.json")}
    assert committed == generated, "run python grafana/build_dashboards.py and commit"


def test_every_datasource_uid_a_dashboard_names_is_provisioned() -> None:
    provisioned = {d["uid"] for d in yaml.safe_load(DATASOURCES.read_text())["datasources"]}
    prometheus = next(
        d
        for d in yaml.safe_load(DATASOURCES.read_text())["datasources"]
        if d["type"] == "prometheus"
    )
    links = prometheus["jsonData"]["exemplarTraceIdDestinations"]
    assert {link["datasourceUid"] for link in links} <= provisioned
    for name, dashboard in load_dashboards().items():
        used = set(_uids(dashboard))
        assert used, f"{name} names no datasource"
        assert used <= provisioned, f"{name} names unprovisioned {used - provisioned}"


def _uids(node: Any) -> list[str]:
    found: list[str] = []
    if isinstance(node, dict):
        source = node.get("datasource")
        if isinstance(source, dict) and "uid" in source:
            found.append(source["uid"])
        for value in node.values():
            found.extend(_uids(value))
    elif isinstance(node, list):
        for value in node:
            found.extend(_uids(value))
    return found


def test_the_dashboards_cover_red_groups_and_resilience() -> None:
    titles = {(d, t) for d, t, _ in panel_queries()}
    assert len(panel_queries()) >= 15
    exprs = " ".join(q for _, _, q in panel_queries())
    for metric in (
        "rh_parallel_events_total",
        "rh_parallel_event_duration_seconds_bucket",
        "rh_parallel_queue_wait_seconds_bucket",
        "rh_parallel_events_in_flight",
        "rh_parallel_workers_limit",
        "rh_parallel_groups_total",
        "rh_parallel_group_duration_seconds_bucket",
        "rh_parallel_groups_active",
        "rh_parallel_retries_total",
        "rh_parallel_circuit_state",
        "rh_parallel_circuit_rejections_total",
        "rh_parallel_circuit_transitions_total",
        "rh_parallel_cache_requests_total",
        "rh_parallel_rate_limited_seconds_total",
        "rh_parallel_bus_dropped_total",
        "rh_parallel_spans_dropped_total",
    ):
        assert metric in exprs, f"no panel shows {metric}"
    assert (
        "groups.json",
        "Items ended per group and outcome over the dashboard range (non-zero only)",
    ) in titles


def test_panel_titles_are_unique() -> None:
    """The integration test (tests/integration/test_dashboards.py) keys its check of what
    each panel shows by the panel's title, and the docs describe panels by title."""
    titles = {(d, t) for d, t, _ in panel_queries()}
    assert len({t for _, t in titles}) == len(titles)


def test_counts_over_time_are_rates_and_ratios_read_zero_without_failures() -> None:
    for dashboard, title, expr in panel_queries():
        if "_total" in expr and "[$__range]" not in expr and "offset" not in expr:
            assert "rate(" in expr, (dashboard, title, expr)  # never increase(): zoom-dependent
        if "$__range" in expr:
            assert "> 0" in expr, (dashboard, title)  # a table over the range: no zero rows
        if "_in_flight" in expr and "sum(" in expr:
            assert 'group!="_none"' in expr, (dashboard, title)  # only beside a limit


def test_duration_buckets_reach_ten_minutes() -> None:
    from rh_parallel.telemetry.metrics import DURATION_BUCKETS, WAIT_BUCKETS

    assert DURATION_BUCKETS[0] <= 0.005 and DURATION_BUCKETS[-3:] == (120.0, 300.0, 600.0)
    assert WAIT_BUCKETS[-1] == 600.0
