"""Generate the Grafana dashboards with the Grafana Foundation SDK.

    python grafana/build_dashboards.py        # rewrites grafana/dashboards/*.json

The JSON files are committed (Grafana provisions them as they are); a test checks that they
match this generator, and an integration test evaluates every panel query against a real
Prometheus scraping the demo and checks that each shows what its title says.

Rules the panels follow:

- every title says what is plotted, per what, and split by what;
- a count over time is a rate (per second, or per minute for rare events), so zooming out
  never makes a line taller;
- a ratio reads 0, not "no data", when nothing failed (``or 0 * ...`` on the numerator:
  series appear when first used, so a failure counter may not exist yet);
- in-flight items are only plotted beside the limit of the same groups (events outside
  groups, ``group="_none"``, have no limit and are left out of those panels);
- a circuit breaker's half-open spell lasts one probe call, far shorter than a scrape
  interval, so the state panel reads the transitions counter (every change, per step) as
  well as the state gauge (what a scrape saw).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from grafana_foundation_sdk.builders.dashboard import Dashboard, QueryVariable, Row
from grafana_foundation_sdk.builders.prometheus import Dataquery as PromQuery
from grafana_foundation_sdk.builders.stat import Panel as Stat
from grafana_foundation_sdk.builders.statetimeline import Panel as StateTimeline
from grafana_foundation_sdk.builders.table import Panel as Table
from grafana_foundation_sdk.builders.timeseries import Panel as Timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.dashboard import (
    DataSourceRef,
    DataTransformerConfig,
    ValueMap,
    ValueMappingResult,
    VariableRefresh,
)
from grafana_foundation_sdk.models.prometheus import PromQueryFormat

PROMETHEUS = DataSourceRef(type_val="prometheus", uid="rh-prometheus")
OUT = Path(__file__).parent / "dashboards"
RATE = "$__rate_interval"
GROUPS = '{group=~"$group"}'
NOT_COMPLETED = 'outcome!~"completed|recovered"'
# 0 while an rh-parallel process is scraped: a drop counter that has no series yet reads 0
RUNNING = "0 * sum(rh_parallel_groups_active)"


def query(expr: str, legend: str = "", ref: str = "A", exemplar: bool = False) -> PromQuery:
    q = PromQuery().expr(expr).ref_id(ref).datasource(PROMETHEUS)
    if legend:
        q = q.legend_format(legend)
    return q.exemplar(True) if exemplar else q


def series(title: str, unit: str, *queries: PromQuery, description: str = "") -> Timeseries:
    panel = Timeseries().title(title).unit(unit).datasource(PROMETHEUS).description(description)
    for q in queries:
        panel = panel.with_target(q)
    return panel.height(8).span(12)


def quantiles(metric: str, selector: str, by: str = "") -> list[PromQuery]:
    grouping = f"le, {by}" if by else "le"
    legend_prefix = f"{{{{{by}}}}} " if by else ""
    rate = f"rate({metric}_bucket{selector}[{RATE}])"
    exemplar = metric.endswith("event_duration_seconds")
    return [
        query(
            f"histogram_quantile({q}, sum by ({grouping}) ({rate}))",
            f"{legend_prefix}p{int(q * 100)}",
            ref,
            exemplar=exemplar,
        )
        for q, ref in ((0.5, "A"), (0.95, "B"), (0.99, "C"))
    ]


def outcome_rate(outcome: str) -> PromQuery:
    """Items per second ending with ``outcome``, by group."""
    selector = f'{{outcome="{outcome}"}}'
    return query(f"sum by (group) (rate(rh_parallel_events_total{selector}[{RATE}]))", "{{group}}")


def label_variable(name: str, metric: str) -> QueryVariable:
    return (
        QueryVariable(name)
        .label(name)
        .datasource(PROMETHEUS)
        .query(f"label_values({metric}, {name})")
        .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
        .include_all(True)
        .multi(True)
        .all_value(".*")
    )


def error_ratio() -> str:
    """Share of items and events ending in the window that did not complete ok."""
    total = f"sum(rate(rh_parallel_events_total[{RATE}]))"
    failed = f"sum(rate(rh_parallel_events_total{{{NOT_COMPLETED}}}[{RATE}]))"
    return f"({failed} or 0 * {total}) / clamp_min({total}, 1e-9)"


def breaker_state() -> str:
    """Per breaker and step: 2 if it half-opened (probed) during the step, else 1 if it
    opened during the step, else its state at the last scrape. A step's changes are the
    transitions counter's growth since one step earlier (``offset $__interval``: steps do
    not overlap, so each change shows in exactly one step). The three terms get a distinct
    ``term`` label so that ``or`` keeps all of them and ``max by (breaker)`` picks the
    highest."""
    transitions = "rh_parallel_circuit_transitions_total"

    def entered(state: str) -> str:
        now = f'{transitions}{{state="{state}"}}'
        return f"sum by (breaker) ({now} - {now} offset $__interval) > bool 0"

    terms = " or ".join(
        f'label_replace({term}, "term", "{name}", "", "")'
        for name, term in (
            ("half_open", f"2 * ({entered('half_open')})"),
            ("opened", entered("open")),
            ("scraped", "max by (breaker) (rh_parallel_circuit_state)"),
        )
    )
    return f"max by (breaker) ({terms})"


def overview() -> Dashboard:
    return (
        Dashboard("rh-parallel / RED overview")
        .uid("rh-parallel-overview")
        .tags(["rh-parallel"])
        .refresh("10s")
        .time("now-15m", "now")
        .with_variable(label_variable("kind", "rh_parallel_events_total"))
        .with_row(Row("Rate and errors"))
        .with_panel(
            series(
                "Items and events ending per second, by outcome",
                "ops",
                query(f"sum by (outcome) (rate(rh_parallel_events_total[{RATE}]))", "{{outcome}}"),
                description="Every group item and every event run outside a group, counted "
                "when it ends: completed, recovered (from a run store), failed, timed_out, "
                "rejected (open breaker), skipped (a dependency failed), cancelled.",
            )
        )
        .with_panel(
            series(
                "Error ratio: share of items and events ending not completed",
                "percentunit",
                query(error_ratio(), "not completed"),
                description="Failed, timed out, rejected, skipped or cancelled, over all that "
                "ended (completed and recovered count as ok). 0 when nothing failed.",
            ).max(1)
        )
        .with_panel(
            series(
                "Items and events ending per second, by kind",
                "ops",
                query(f"sum by (kind) (rate(rh_parallel_events_total[{RATE}]))", "{{kind}}"),
                description="agent, tool, llm (actor events) and task (plain awaitables).",
            )
        )
        .with_row(Row("Duration, one panel per kind"))
        .with_panel(
            series(
                "Duration of $kind items and events, by group: p50 / p95 / p99",
                "s",
                *quantiles("rh_parallel_event_duration_seconds", '{kind=~"$kind"}', by="group"),
                description="Seconds they ran, all attempts, every outcome; buckets from 5 ms "
                "to 10 min (above: reads 600). A nested group has its own name, so outer and "
                "inner levels are separate lines. Exemplar dots link to the item's trace.",
            )
            .repeat("kind")
            .repeat_direction("h")
        )
        .with_row(Row("Concurrency"))
        .with_panel(
            series(
                "Items in flight and worker limit, summed over running groups",
                "short",
                query('sum(rh_parallel_events_in_flight{group!="_none"})', "in flight", "A"),
                query("sum(rh_parallel_workers_limit)", "limit (sum of max_workers)", "B"),
                description="Items holding a worker slot (not backing off before a retry, not "
                "queued) beside the slots their groups allow, read in the same scrape: in "
                "flight never exceeds the limit, except while the items running when an "
                "AdaptiveLimit was lowered finish. Events outside groups have no limit and "
                "are not counted here.",
            )
        )
        .with_panel(
            series(
                "Share of worker slots in use, by group (in flight / limit)",
                "percentunit",
                query(
                    "sum by (group) (rh_parallel_events_in_flight) / "
                    "(sum by (group) (rh_parallel_workers_limit) > 0)",
                    "{{group}}",
                ),
                description="1 means the group runs at its max_workers: with a growing queue "
                "wait, the limit sets the pace. Only groups running at the time.",
            )
            .min(0)
            .max(1)
        )
        .with_panel(
            series(
                "Queue wait for a worker slot, all groups: p50 / p95 / p99",
                "s",
                *quantiles("rh_parallel_queue_wait_seconds", ""),
                description="Seconds items waited for a slot of their group (first attempt and "
                "after each retry's backoff), buckets from 1 ms to 10 min.",
            )
        )
        .with_panel(
            series(
                "Telemetry dropped per second: bus records and spans",
                "ops",
                query(
                    f"sum(rate(rh_parallel_bus_dropped_total[{RATE}])) or {RUNNING}",
                    "bus records (a subscriber's queue was full)",
                    "A",
                ),
                query(
                    f"sum(rate(rh_parallel_spans_dropped_total[{RATE}])) or {RUNNING}",
                    "spans (the export queue was full)",
                    "B",
                ),
                description="Should stay at 0. Bus drops by subscriber: "
                "rh_parallel_bus_dropped_total{subscriber}.",
            )
        )
    )


def groups() -> Dashboard:
    return (
        Dashboard("rh-parallel / Groups")
        .uid("rh-parallel-groups")
        .tags(["rh-parallel"])
        .refresh("10s")
        .time("now-15m", "now")
        .with_variable(label_variable("group", "rh_parallel_events_total"))
        .with_panel(
            Stat()
            .title("Groups running now (every name)")
            .datasource(PROMETHEUS)
            .height(6)
            .span(6)
            .with_target(query("sum(rh_parallel_groups_active)"))
        )
        .with_panel(
            series(
                "Groups ending per minute, by outcome (every name)",
                "opm",
                query(
                    f"60 * sum by (outcome) (rate(rh_parallel_groups_total[{RATE}]))",
                    "{{outcome}}",
                ),
                description="A rate: the same height whatever the zoom. completed: every item "
                "ok or handled; failed: a strategy or a timeout stopped it; cancelled.",
            )
            .span(18)
            .height(6)
        )
        .with_panel(
            series(
                "Group duration, by group: p50 / p95 / p99",
                "s",
                *quantiles("rh_parallel_group_duration_seconds", GROUPS, by="group"),
                description="Seconds from a group's start to its end, buckets up to 10 min.",
            )
        )
        .with_panel(
            series(
                "Items in flight and worker limit, by group",
                "short",
                query(
                    'sum by (group) (rh_parallel_events_in_flight{group=~"$group", '
                    'group!="_none"})',
                    "{{group}} in flight",
                    "A",
                ),
                query(
                    f"sum by (group) (rh_parallel_workers_limit{GROUPS})",
                    "{{group}} limit",
                    "B",
                ),
                description="For each group name, items holding a slot and the sum of the "
                "current max_workers of its running groups, read in the same scrape: in flight "
                "never exceeds its group's limit, except while the items running when an "
                "AdaptiveLimit was lowered finish.",
            )
        )
        .with_panel(
            series(
                "Cache lookups per second, by group and result",
                "ops",
                query(
                    "sum by (group, result) "
                    f"(rate(rh_parallel_cache_requests_total{GROUPS}[{RATE}]))",
                    "{{group}} {{result}}",
                ),
                description="Lookups of cacheable items before they ran: hit (served from the "
                "cache, did not run) or miss (ran).",
            )
        )
        .with_panel(
            Table()
            .title("Items ended per group and outcome over the dashboard range (non-zero only)")
            .datasource(PROMETHEUS)
            .height(10)
            .span(24)
            .description(
                "One row per group that ended items in the range, one column per outcome "
                "that occurred (rounded from Prometheus' increase(), an estimate)."
            )
            .with_target(
                query(
                    "round(sum by (group, outcome) "
                    f"(increase(rh_parallel_events_total{GROUPS}[$__range]))) > 0"
                )
                .format(PromQueryFormat.TABLE)
                .instant()
            )
            .with_transformation(
                DataTransformerConfig(
                    id_val="groupingToMatrix",
                    options={"columnField": "outcome", "rowField": "group", "valueField": "Value"},
                )
            )
        )
    )


BREAKER_STATES = [
    ValueMap(
        options={
            "0": ValueMappingResult(text="closed", color="green", index=0),
            "1": ValueMappingResult(text="open", color="red", index=1),
            "2": ValueMappingResult(text="half-open", color="orange", index=2),
        }
    )
]


def resilience() -> Dashboard:
    return (
        Dashboard("rh-parallel / Resilience")
        .uid("rh-parallel-resilience")
        .tags(["rh-parallel"])
        .refresh("10s")
        .time("now-15m", "now")
        .with_panel(
            series(
                "Retries per second, by group and kind",
                "ops",
                query(
                    f"sum by (group, kind) (rate(rh_parallel_retries_total[{RATE}]))",
                    "{{group}} {{kind}}",
                ),
                description="Failed attempts that will run again after a backoff.",
            )
        )
        .with_panel(
            StateTimeline()
            .title(
                "Circuit breaker state, by breaker (each step: half-open if it probed, open "
                "if it opened, else as scraped)"
            )
            .datasource(PROMETHEUS)
            .height(8)
            .span(12)
            .mappings(BREAKER_STATES)
            .description(
                "A breaker half-opens for one probe call, far shorter than a scrape interval, "
                "so the state gauge alone almost never shows it: each step also reads the "
                "transitions counter, which counts every change. Half-open marks a recovery "
                "attempt; whether it closed or re-opened shows in the next step."
            )
            .with_target(query(breaker_state(), "{{breaker}}"))
        )
        .with_panel(
            series(
                "Circuit breaker transitions per minute, by breaker and state entered",
                "opm",
                query(
                    "60 * sum by (breaker, state) "
                    f"(rate(rh_parallel_circuit_transitions_total[{RATE}]))",
                    "{{breaker}} to {{state}}",
                ),
                description="Every state change, also those between two scrapes: open (tripped "
                "or a probe failed), half_open (a probe after recovery_timeout), closed.",
            )
        )
        .with_panel(
            series(
                "Calls rejected by open circuit breakers per second, by breaker",
                "ops",
                query(
                    f"sum by (breaker) (rate(rh_parallel_circuit_rejections_total[{RATE}]))",
                    "{{breaker}}",
                ),
            )
        )
        .with_panel(
            series(
                "Seconds waited for rate limits per second, by limiter",
                "short",
                query(
                    f"sum by (limiter) (rate(rh_parallel_rate_limited_seconds_total[{RATE}]))",
                    "{{limiter}}",
                ),
                description="How many items wait for each RateLimit on average (seconds waited "
                "per second): above 0, the rate limit, not the workers, sets the pace.",
            )
        )
        .with_panel(
            series("Items timed out per second, by group", "ops", outcome_rate("timed_out"))
        )
        .with_panel(
            series(
                "Items skipped per second because a dependency failed, by group",
                "ops",
                outcome_rate("skipped"),
            )
        )
        .with_panel(
            series("Items cancelled per second, by group", "ops", outcome_rate("cancelled"))
        )
    )


DASHBOARDS = {"overview": overview, "groups": groups, "resilience": resilience}


def render() -> dict[str, str]:
    """File name -> JSON text, as committed."""
    encoder = JSONEncoder(sort_keys=True, indent=2)
    return {
        f"{name}.json": encoder.encode(build().build()) + "\n" for name, build in DASHBOARDS.items()
    }


def main() -> int:
    OUT.mkdir(exist_ok=True)
    for name, text in render().items():
        (OUT / name).write_text(text)
        json.loads(text)
        print(f"wrote {OUT / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
