"""A real Prometheus scraping a demo-like program (``metrics_program.py``): a four-minute
agent run lands in the (120, 300] bucket and the duration panel shows it, and the series at
the group cap stay under the bound stated by ``series_bound``."""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from prometheus_client.parser import text_string_to_metric_families

from rh_parallel.telemetry.metrics import series_bound
from tests.deploy.helpers import ROOT, panel_queries
from tests.integration.helpers import Prometheus, free_port, start_prometheus, stop, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

DURATION_PANEL = "Duration of $kind items and events, by group: p50 / p95 / p99"
RATE_LIMIT_PANEL = "Seconds waited for rate limits per second, by limiter"
# the program's shape: 100 names + _none + _other, 4 kinds, 2 outcomes that ran, 1 breaker,
# 1 rate limit
BOUND = series_bound(102, kinds=4, ran_outcomes=2, breakers=1, limiters=1)
OTHER_COLLECTORS = 51 + 1  # bus drops (at most 50 subscriber names + _other), span drops


@dataclass
class Scraped:
    server: Prometheus
    metrics_url: str
    started: float  # when the long item started
    ready: float  # when the whole workload had run


@pytest.fixture(scope="module")
def scraped(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scraped]:
    port = free_port()
    program = subprocess.Popen(
        [sys.executable, "-m", "tests.integration.metrics_program", str(port)],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert program.stdin is not None and program.stdout is not None
    server, prometheus = start_prometheus(
        tmp_path_factory.mktemp("prometheus"), [f"127.0.0.1:{port}"]
    )
    try:
        assert program.stdout.readline().strip() == "serving"
        wait_until(lambda: server.query('up{job="rh-parallel"} == 1'), 30, "a first scrape")
        started = time.time()
        program.stdin.write("go\n")
        program.stdin.flush()
        assert program.stdout.readline().strip() == "ready", "the program failed"
        ready = time.time()
        time.sleep(4.5)  # two more scrapes: every series of the workload is in Prometheus
        yield Scraped(server, f"http://127.0.0.1:{port}/metrics", started, ready)
    finally:
        program.stdin.close()
        try:
            program.wait(timeout=10)
        except subprocess.TimeoutExpired:
            program.kill()
            program.wait()
        program.stdout.close()
        stop(prometheus)


def test_a_four_minute_item_lands_in_the_300_second_bucket(scraped: Scraped) -> None:
    server = scraped.server
    selector = 'group="long runs", kind="agent", outcome="completed"'
    buckets = {
        s["metric"]["le"]: float(s["value"][1])
        for s in server.query(
            f"last_over_time(rh_parallel_event_duration_seconds_bucket{{{selector}}}[20s])"
        )
    }
    assert buckets["60.0"] == buckets["120.0"] == 0
    assert buckets["300.0"] == buckets["600.0"] == buckets["+Inf"] == 1
    (total,) = server.query(
        f"last_over_time(rh_parallel_event_duration_seconds_sum{{{selector}}}[20s])"
    )
    assert 240 <= float(total["value"][1]) < 250


def test_the_duration_panel_shows_the_four_minute_run_between_two_and_five_minutes(
    scraped: Scraped,
) -> None:
    """The overview's duration panel for kind=agent, as Grafana would run it over the run:
    p50 / p95 / p99 of group "long runs" read 210 / 291 / 298.2 s (linear interpolation in
    (120, 300]), where the old buckets said 60 for all three."""
    exprs = [q for _, title, q in panel_queries() if title == DURATION_PANEL]
    assert len(exprs) == 3
    seen: dict[str, float] = {}
    for expr, quantile in zip(exprs, ("p50", "p95", "p99"), strict=True):
        promql = expr.replace("$kind", "agent").replace("$__rate_interval", "10s")
        result = scraped.server.query_range(promql, scraped.started, scraped.ready + 2, 1.0)
        (long_runs,) = [r for r in result if r["metric"].get("group") == "long runs"]
        values = [float(v) for _, v in long_runs["values"] if v != "NaN"]
        assert values, f"{quantile}: no value while the run was in the window"
        assert all(120 < v <= 300 for v in values), (quantile, values)
        seen[quantile] = max(values)
    assert seen["p50"] == pytest.approx(210) and seen["p99"] == pytest.approx(298.2)


def test_the_rate_limit_panel_shows_the_waits_by_limiter(scraped: Scraped) -> None:
    """The resilience dashboard's rate-limit panel, over the run: one line, the limiter
    "provider-api", above 0 while its 20 items waited; the counter holds about the 19 s
    they waited in all (their starts 100 ms apart)."""
    (expr,) = [q for _, title, q in panel_queries() if title == RATE_LIMIT_PANEL]
    promql = expr.replace("$__rate_interval", "10s")
    result = scraped.server.query_range(promql, scraped.started, scraped.ready + 2, 1.0)
    assert [r["metric"] for r in result] == [{"limiter": "provider-api"}]
    assert max(float(v) for _, v in result[0]["values"]) > 0
    (total,) = scraped.server.query(
        'last_over_time(rh_parallel_rate_limited_seconds_total{limiter="provider-api"}[20s])'
    )
    assert 15 < float(total["value"][1]) < 23


def test_series_at_the_group_cap_stay_under_the_stated_bound(scraped: Scraped) -> None:
    """Counted by Prometheus from a real scrape; the same number as the lines of the
    endpoint's own text. Before this change, the same workload exposed 52,079 series."""
    server = scraped.server
    # over the last scrapes (a scrape that timed out would mark every series stale)
    (stored,) = server.query(
        'count(last_over_time({__name__=~"rh_parallel_.+", job="rh-parallel"}[20s]))'
    )
    count = int(stored["value"][1])
    assert count <= BOUND + OTHER_COLLECTORS, (count, BOUND)
    with urllib.request.urlopen(scraped.metrics_url, timeout=10) as response:
        text = response.read().decode()
    lines = [
        sample
        for family in text_string_to_metric_families(text)
        if family.name.startswith("rh_parallel_")
        for sample in family.samples
    ]
    assert len(lines) == count
    groups = {
        s["metric"]["group"]
        for s in server.query("last_over_time(rh_parallel_events_in_flight[20s])")
    }
    assert len(groups) == 102 and {"_none", "_other", "long runs", "rate limited"} <= groups
    assert count < 0.5 * 52_079
    assert len(text.encode()) < 2.5e6
