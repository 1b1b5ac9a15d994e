"""Every dashboard panel, run on a real Prometheus scraping the demo, shows what its title says.

One demo run (30 s: failing documents, a flaky API retried with backoff behind a circuit
breaker that trips and recovers every few seconds, LLM calls served from a cache from the
second round on) is scraped every second. Each panel's queries are then run as Grafana runs
them (a range query, one step a second, ``$__rate_interval`` = 10 s), and ``CHECKS`` holds,
per panel title, the check that its numbers are what the title says; the check's docstring
states it. Beside the panels: in-flight never exceeds the limit in any scraped sample.
"""

from __future__ import annotations

import math
import os
import subprocess
import time
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from rh_parallel.model.enums import ResultStatus
from tests.deploy.helpers import panel_queries
from tests.integration.helpers import (
    Prometheus,
    demo_command,
    free_port,
    http_json,
    start_prometheus,
    stop,
    wait_until,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

RATE_INTERVAL = "10s"
STEP = "1s"  # Grafana's $__interval: the step of a 15-minute dashboard at 1 s scrapes
DEMO_SECONDS = 30
OUTCOMES = {s.value for s in ResultStatus}
OK = {"completed", "recovered"}

Series = dict[str, Any]  # {"metric": labels, "points": [(t, value), ...]} (NaN left out)


@dataclass
class Run:
    """The demo run as Prometheus stored it, and how to ask about it."""

    server: Prometheus
    start: float
    end: float
    substitutions: dict[str, str] = field(default_factory=dict)

    def expand(self, expr: str, **variables: str) -> str:
        """Grafana's variables, as Grafana expands them (``All`` is ``.*``)."""
        expr = expr.replace("$__rate_interval", variables.get("rate", RATE_INTERVAL))
        expr = expr.replace("$__interval", STEP)
        expr = expr.replace("$__range", f"{int(self.end - self.start)}s")
        expr = expr.replace("$group", variables.get("group", ".*"))
        return expr.replace("$kind", variables.get("kind", ".*"))

    def range(self, expr: str, **variables: str) -> list[Series]:
        found = self.server.query_range(self.expand(expr, **variables), self.start, self.end)
        return [
            {
                "metric": s["metric"],
                "points": [(float(t), float(v)) for t, v in s["values"] if v != "NaN"],
            }
            for s in found
        ]

    def instant(self, expr: str, **variables: str) -> list[Series]:
        found = self.server.query(self.expand(expr, **variables), at=self.end)
        return [
            {"metric": s["metric"], "points": [(self.end, float(s["value"][1]))]} for s in found
        ]

    def label_values(self, label: str, metric: str) -> list[str]:
        url = f"http://127.0.0.1:{self.server.port}/api/v1/label/{label}/values?" + (
            urllib.parse.urlencode({"match[]": metric})
        )
        return list(http_json(url)["data"])


def values(series: list[Series]) -> list[float]:
    return [v for s in series for _, v in s["points"]]


def by(series: list[Series], label: str) -> dict[str, dict[float, float]]:
    return {s["metric"].get(label, ""): dict(s["points"]) for s in series}


def labels_of(series: list[Series]) -> set[tuple[str, ...]]:
    return {tuple(sorted(s["metric"])) for s in series}


def ordered_quantiles(run: Run, exprs: list[str], key: str, **variables: str) -> dict[str, Any]:
    """p50 <= p95 <= p99 <= 600 s at every step of every ``key`` value; returns the series."""
    p50, p95, p99 = (by(run.range(e, **variables), key) for e in exprs)
    assert p50, f"no data for {variables}"
    for name, points in p50.items():
        for t, low in points.items():
            mid, high = p95[name].get(t), p99[name].get(t)
            if mid is not None and high is not None:
                assert low <= mid + 1e-9 and mid <= high + 1e-9 and high <= 600, (name, t)
    return {"p50": p50, "p95": p95, "p99": p99}


def median(points: dict[float, float]) -> float:
    ordered = sorted(points.values())
    return ordered[len(ordered) // 2]


# -- the checks, one per panel title -----------------------------------------------------


def throughput_by_outcome(run: Run, exprs: list[str]) -> None:
    """Series by ``outcome`` only, each a ResultStatus; completed, failed and skipped items
    occur; at every step they add up to the rate of every item and event ending."""
    (expr,) = exprs
    found = run.range(expr)
    assert labels_of(found) == {("outcome",)}
    rates = by(found, "outcome")
    assert set(rates) <= OUTCOMES
    for outcome in ("completed", "failed", "skipped"):
        assert max(rates[outcome].values()) > 0, outcome
    total = by(run.range(f"sum(rate(rh_parallel_events_total[{RATE_INTERVAL}]))"), "")[""]
    for t, value in total.items():
        assert sum(r.get(t, 0) for r in rates.values()) == pytest.approx(value, rel=1e-6)


def error_ratio(run: Run, exprs: list[str]) -> None:
    """One series in [0, 1], above 0 while documents fail, equal at every step to the share
    of not-completed outcomes in the by-outcome rates (completed and recovered are ok)."""
    (expr,) = exprs
    ratio = by(run.range(expr), "")[""]
    assert all(0 <= v <= 1 for v in ratio.values())
    assert max(ratio.values()) > 0
    rates = by(
        run.range(f"sum by (outcome) (rate(rh_parallel_events_total[{RATE_INTERVAL}]))"),
        "outcome",
    )
    for t, value in ratio.items():
        total = sum(r.get(t, 0) for r in rates.values())
        failed = sum(r.get(t, 0) for o, r in rates.items() if o not in OK)
        assert value == pytest.approx(failed / total if total else 0.0, abs=1e-9)


def throughput_by_kind(run: Run, exprs: list[str]) -> None:
    """Series by ``kind`` only: the demo's agent (orchestrator), tool (documents, the search
    API, the aggregation) and llm calls, adding up to the rate of all that ended."""
    (expr,) = exprs
    found = run.range(expr)
    assert labels_of(found) == {("kind",)}
    rates = by(found, "kind")
    assert set(rates) == {"agent", "tool", "llm"}
    total = by(run.range(f"sum(rate(rh_parallel_events_total[{RATE_INTERVAL}]))"), "")[""]
    for t, value in total.items():
        assert sum(r.get(t, 0) for r in rates.values()) == pytest.approx(value, rel=1e-6)


def duration_per_kind(run: Run, exprs: list[str]) -> None:
    """Repeated for each value of the ``kind`` variable: lines by ``group`` only, p50 <= p95
    <= p99 <= 600 s, of that kind only (llm: in the nested "analyze" groups; agent: the
    orchestrator, outside groups; tool: at both levels, the outer document group and the
    nested "search" group as separate lines); each line is the quantile of its own group's
    and kind's buckets alone (recomputed with that group and kind fixed)."""
    kinds = run.label_values("kind", "rh_parallel_events_total")
    assert set(kinds) == {"agent", "tool", "llm"}
    groups = {}
    for kind in kinds:
        assert labels_of(run.range(exprs[0], kind=kind)) == {("group",)}
        groups[kind] = ordered_quantiles(run, exprs, "group", kind=kind)["p50"]
    assert set(groups["agent"]) == {"_none"}
    assert set(groups["llm"]) == {"analyze"}
    tool = {g for g, points in groups["tool"].items() if points}
    assert tool == {"Document Processing", "search"}
    for group in sorted(tool):
        alone = by(
            run.range(
                "histogram_quantile(0.5, sum by (le) (rate(rh_parallel_event_duration_seconds_"
                f'bucket{{kind="tool", group="{group}"}}[{RATE_INTERVAL}])))'
            ),
            "",
        )[""]
        assert groups["tool"][group] == pytest.approx(alone)


def in_flight_summed(run: Run, exprs: list[str]) -> None:
    """Two single series, in flight (events outside groups left out) and the sum of the
    running groups' limits: in flight never above the limit, and it reaches it."""
    in_flight, limit = (by(run.range(e), "")[""] for e in exprs)
    assert max(in_flight.values()) > 0
    for t, value in in_flight.items():
        assert value <= limit[t], t
    assert any(value == limit[t] for t, value in in_flight.items())


def slots_in_use(run: Run, exprs: list[str]) -> None:
    """Series by ``group`` (never ``_none``), every value in [0, 1], and the document group
    (more documents than workers) at 1 at some step."""
    (expr,) = exprs
    shares = by(run.range(expr), "group")
    assert "_none" not in shares
    assert all(0 <= v <= 1 for v in values(run.range(expr)))
    assert max(shares["Document Processing"].values()) == 1


def queue_wait(run: Run, exprs: list[str]) -> None:
    """Single series per quantile, p50 <= p95 <= p99 <= 600 s."""
    ordered_quantiles(run, exprs, "")


def telemetry_dropped(run: Run, exprs: list[str]) -> None:
    """Two single series (bus records, spans), present at every step (0, not "no data",
    when nothing dropped), never negative."""
    for expr in exprs:
        found = run.range(expr)
        assert len(found) == 1 and labels_of(found) == {()}
        assert all(v >= 0 for v in values(found))
        assert len(found[0]["points"]) >= 0.9 * (run.end - run.start)


def groups_running(run: Run, exprs: list[str]) -> None:
    """One series of whole numbers >= 0, at least 1 while the demo runs (the outer group)."""
    (expr,) = exprs
    found = values(run.range(expr))
    assert all(v >= 0 and v == int(v) for v in found) and max(found) >= 1


def group_outcomes(run: Run, exprs: list[str]) -> None:
    """Series by ``outcome`` (completed, failed, cancelled), per minute, and a rate: the
    same height whatever window Grafana picks (with 5 s and 15 s windows the averages agree
    within a factor 1.5, where an increase() would triple)."""
    (expr,) = exprs
    found = run.range(expr)
    assert labels_of(found) == {("outcome",)}
    rates = by(found, "outcome")
    assert set(rates) <= {"completed", "failed", "cancelled"}
    assert max(rates["completed"].values()) > 0
    # steps whose windows (5 s and 15 s) both lie inside the run: equal up to noise
    settled = run.start + 15

    def average(window: str) -> float:
        points = [v for s in run.range(expr, rate=window) for t, v in s["points"] if t >= settled]
        return sum(points) / len(points)

    assert 1 / 1.5 < average("15s") / average("5s") < 1.5


def group_duration(run: Run, exprs: list[str]) -> None:
    """Lines by ``group``, p50 <= p95 <= p99 <= 600 s; the outer document group lasts longer
    than the nested "analyze" and "search" groups it contains."""
    p50 = ordered_quantiles(run, exprs, "group")["p50"]
    assert set(p50) == {"Document Processing", "analyze", "search"}
    outer = median(p50["Document Processing"])
    assert outer > median(p50["analyze"]) and outer > median(p50["search"])


def in_flight_by_group(run: Run, exprs: list[str]) -> None:
    """For each group, its in-flight line never above its limit line (same step); no
    ``_none`` line; the document group reaches its limit of 3."""
    in_flight, limit = (by(run.range(e), "group") for e in exprs)
    assert "_none" not in in_flight and in_flight
    for group, points in in_flight.items():
        for t, value in points.items():
            assert value <= limit[group][t], (group, t)
    assert max(in_flight["Document Processing"].values()) == 3
    assert max(limit["Document Processing"].values()) == 3


def cache_lookups(run: Run, exprs: list[str]) -> None:
    """Series by ``group`` and ``result`` (hit, miss): the LLM calls of the nested "analyze"
    groups, served from the cache from the second round on."""
    (expr,) = exprs
    found = run.range(expr)
    assert labels_of(found) == {("group", "result")}
    assert {s["metric"]["result"] for s in found} <= {"hit", "miss"}
    hits = [s for s in found if s["metric"]["result"] == "hit"]
    assert max(values(hits)) > 0
    assert {s["metric"]["group"] for s in found} == {"analyze"}


def per_group_table(run: Run, exprs: list[str]) -> None:
    """One row per (group, outcome) that ended items in the range, none with 0; exactly the
    pairs whose counter grew between the range's first and last raw samples (so zero rows
    of counters created at 0 are left out)."""
    (expr,) = exprs
    rows = {
        (s["metric"]["group"], s["metric"]["outcome"]): s["points"][0][1] for s in run.instant(expr)
    }
    assert rows and all(v >= 1 for v in rows.values())
    raw = run.server.query(f"rh_parallel_events_total[{int(run.end - run.start)}s]", at=run.end)
    grew: dict[tuple[str, str], float] = {}
    for s in raw:
        key = (s["metric"]["group"], s["metric"]["outcome"])
        first, last = float(s["values"][0][1]), float(s["values"][-1][1])
        grew[key] = grew.get(key, 0) + last - first
    assert set(rows) == {k for k, v in grew.items() if v > 0}
    assert len(rows) < len(grew)  # there were zero rows to leave out


def retries(run: Run, exprs: list[str]) -> None:
    """Series by ``group`` and ``kind``; the retried calls are the search API's (tool) in the
    nested "search" groups."""
    (expr,) = exprs
    found = run.range(expr)
    assert labels_of(found) == {("group", "kind")}
    busy = [s for s in found if any(v > 0 for _, v in s["points"])]
    assert busy
    assert {s["metric"]["kind"] for s in busy} == {"tool"}
    assert {s["metric"]["group"] for s in busy} == {"search"}


def breaker_state(run: Run, exprs: list[str]) -> None:
    """One line per breaker (the demo's search-api), values 0 / 1 / 2 only, showing closed,
    open and half-open; half-open exactly at the steps during which the breaker half-opened,
    which the state gauge alone (sampled at scrapes) shows far less often or never."""
    (expr,) = exprs
    found = by(run.range(expr), "breaker")
    assert set(found) == {"search-api"}
    states = found["search-api"]
    assert {1, 2} <= set(states.values()) <= {0, 1, 2}  # closed too, if a probe succeeded
    transitions = "rh_parallel_circuit_transitions_total"
    probed = by(
        run.range(
            f'sum by (breaker) ({transitions}{{state="half_open"}} - '
            f'{transitions}{{state="half_open"}} offset {STEP})'
        ),
        "breaker",
    )["search-api"]
    for t, value in states.items():
        assert (value == 2) == (probed.get(t, 0) > 0), t
    gauge = by(run.range("max by (breaker) (rh_parallel_circuit_state)"), "breaker")
    sampled = sum(v == 2 for v in gauge["search-api"].values())
    assert sum(v == 2 for v in states.values()) > sampled


def breaker_transitions(run: Run, exprs: list[str]) -> None:
    """Series by ``breaker`` and ``state`` entered, per minute: the breaker opened and
    half-opened; and every close followed a half-open probe (counts at the end of the run:
    closed <= half_open <= open)."""
    (expr,) = exprs
    found = run.range(expr)
    assert labels_of(found) == {("breaker", "state")}
    rates = by(found, "state")
    assert set(rates) <= {"open", "half_open", "closed"}
    assert max(rates["open"].values()) > 0 and max(rates["half_open"].values()) > 0
    totals = {
        s["metric"]["state"]: float(s["value"][1])
        for s in run.server.query("rh_parallel_circuit_transitions_total", at=run.end)
    }
    assert totals["closed"] <= totals["half_open"] <= totals["open"]


def rejections(run: Run, exprs: list[str]) -> None:
    """Series by ``breaker``; the open breaker rejected calls."""
    (expr,) = exprs
    found = run.range(expr)
    assert labels_of(found) == {("breaker",)} and max(values(found)) > 0


def zero_by_group(run: Run, exprs: list[str]) -> None:
    """Series by ``group`` (they exist: 0, not "no data"), all 0: the demo has no timeouts
    and cancels nothing."""
    (expr,) = exprs
    found = run.range(expr)
    assert found and labels_of(found) == {("group",)}
    assert set(values(found)) == {0}


def skipped(run: Run, exprs: list[str]) -> None:
    """Series by ``group``: the aggregation step, skipped in the document group whenever a
    document failed; nothing else skips."""
    (expr,) = exprs
    rates = by(run.range(expr), "group")
    assert max(rates["Document Processing"].values()) > 0
    assert all(set(p.values()) == {0} for g, p in rates.items() if g != "Document Processing")


def rate_limited(run: Run, exprs: list[str]) -> None:
    """The demo waits for no rate limit: no series (never a made-up 0 per limiter). What
    the panel shows when items wait is checked on the program of test_metrics_scrape.py."""
    (expr,) = exprs
    assert run.range(expr) == []


CHECKS: dict[str, Callable[[Run, list[str]], None]] = {
    "Items and events ending per second, by outcome": throughput_by_outcome,
    "Error ratio: share of items and events ending not completed": error_ratio,
    "Items and events ending per second, by kind": throughput_by_kind,
    "Duration of $kind items and events, by group: p50 / p95 / p99": duration_per_kind,
    "Items in flight and worker limit, summed over running groups": in_flight_summed,
    "Share of worker slots in use, by group (in flight / limit)": slots_in_use,
    "Queue wait for a worker slot, all groups: p50 / p95 / p99": queue_wait,
    "Telemetry dropped per second: bus records and spans": telemetry_dropped,
    "Groups running now (every name)": groups_running,
    "Groups ending per minute, by outcome (every name)": group_outcomes,
    "Group duration, by group: p50 / p95 / p99": group_duration,
    "Items in flight and worker limit, by group": in_flight_by_group,
    "Cache lookups per second, by group and result": cache_lookups,
    "Items ended per group and outcome over the dashboard range (non-zero only)": (per_group_table),
    "Retries per second, by group and kind": retries,
    "Circuit breaker state, by breaker (each step: half-open if it probed, open if it "
    "opened, else as scraped)": breaker_state,
    "Circuit breaker transitions per minute, by breaker and state entered": breaker_transitions,
    "Calls rejected by open circuit breakers per second, by breaker": rejections,
    "Seconds waited for rate limits per second, by limiter": rate_limited,
    "Items timed out per second, by group": zero_by_group,
    "Items skipped per second because a dependency failed, by group": skipped,
    "Items cancelled per second, by group": zero_by_group,
}


def panels() -> dict[str, list[str]]:
    """Panel title -> its queries (titles are unique across the dashboards)."""
    found: dict[str, list[str]] = {}
    for _, title, expr in panel_queries():
        found.setdefault(title, []).append(expr)
    return found


def run_demo(
    directory: Path, *args: str
) -> tuple[Prometheus, subprocess.Popen[bytes], subprocess.Popen[bytes]]:
    """Start a Prometheus, then the demo it scrapes: the server, its process, the demo's."""
    metrics_port = free_port()
    server, prometheus = start_prometheus(directory, [f"127.0.0.1:{metrics_port}"])
    with (directory / "demo.out").open("w") as output:
        demo = subprocess.Popen(
            demo_command(*args, "--metrics-port", str(metrics_port), "--mode", "collapsed"),
            env=os.environ,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    return server, prometheus, demo


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    directory = tmp_path_factory.mktemp("dashboards")
    server, prometheus, demo = run_demo(
        directory,
        *("--duration", str(DEMO_SECONDS), "--latency", "0.05", "--fail-rate", "0.45"),
        *("--docs", "8", "--workers", "3", "--cache", str(directory / "cache.sqlite")),
    )
    try:
        wait_until(lambda: server.query('up{job="rh-parallel"} == 1'), 30, "the first scrape")
        first = time.time()
        assert demo.wait(timeout=DEMO_SECONDS + 40) == 0, (directory / "demo.out").read_text()
        time.sleep(2)  # a failed scrape marks the demo's series stale
        # the last scrape that reached the demo
        (active,) = server.query("rh_parallel_groups_active[5m]")
        end = float(active["values"][-1][0])
        assert end - first > DEMO_SECONDS - 10, "the demo stopped early"
        yield Run(server, first + 1, end)
    finally:
        stop(demo)
        stop(prometheus)


def test_every_panel_has_a_check() -> None:
    assert set(panels()) == set(CHECKS)


@pytest.mark.parametrize("title", sorted(CHECKS))
def test_the_panel_shows_what_its_title_says(run: Run, title: str) -> None:
    CHECKS[title](run, panels()[title])


def test_in_flight_never_exceeds_the_limit_in_any_scraped_sample(run: Run) -> None:
    """Every raw sample pair of one scrape (same timestamp) per group, and the same as one
    PromQL query: max over the run of (in flight - limit) per group <= 0."""
    window = f"{int(run.end - run.start) + 5}s"
    in_flight = run.server.query(f"rh_parallel_events_in_flight[{window}]", at=run.end)
    limits = run.server.query(f"rh_parallel_workers_limit[{window}]", at=run.end)
    limit_at = {(s["metric"]["group"], t): float(v) for s in limits for t, v in s["values"]}
    pairs: dict[str, int] = {}
    for s in in_flight:
        group = s["metric"]["group"]
        if group == "_none":
            continue  # events outside groups: no limit
        for t, v in s["values"]:
            assert float(v) <= limit_at[(group, t)], (group, t, v)
            pairs[group] = pairs.get(group, 0) + 1
    assert set(pairs) == {"Document Processing", "analyze", "search"}
    assert min(pairs.values()) > 0.8 * (run.end - run.start)  # a pair per scrape
    worst = run.server.query(
        "max_over_time((rh_parallel_events_in_flight - on (group, instance, job) "
        f"rh_parallel_workers_limit)[{window}:1s])",
        at=run.end,
    )
    assert worst and all(float(s["value"][1]) <= 0 for s in worst)
    assert not math.isnan(max(float(s["value"][1]) for s in worst))


def test_the_dashboard_variables_have_values(run: Run) -> None:
    assert "Document Processing" in run.label_values("group", "rh_parallel_events_total")
    assert "llm" in run.label_values("kind", "rh_parallel_events_total")


def test_the_error_ratio_reads_zero_not_no_data_when_nothing_fails(tmp_path: Path) -> None:
    server, prometheus, demo = run_demo(
        tmp_path,
        *("--duration", "8", "--latency", "0.02", "--fail-rate", "0", "--docs", "3"),
    )
    try:
        wait_until(lambda: server.query('up{job="rh-parallel"} == 1'), 30, "the first scrape")
        (expr,) = panels()["Error ratio: share of items and events ending not completed"]
        found = wait_until(
            lambda: server.query(Run(server, 0, 0).expand(expr)),
            20,
            "the error ratio",
        )
        assert [float(s["value"][1]) for s in found] == [0.0]
    finally:
        stop(demo)
        stop(prometheus)
