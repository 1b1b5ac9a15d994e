"""Generate the Grafana dashboards with the Grafana Foundation SDK.

    python grafana/build_dashboards.py        # rewrites grafana/dashboards/*.json

The JSON files are committed (Grafana provisions them as they are); a test checks that they
match this generator and evaluates every panel query against a real Prometheus.
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
from grafana_foundation_sdk.models.dashboard import DataSourceRef, VariableRefresh
from grafana_foundation_sdk.models.prometheus import PromQueryFormat

PROMETHEUS = DataSourceRef(type_val="prometheus", uid="rh-prometheus")
OUT = Path(__file__).parent / "dashboards"
RATE = "$__rate_interval"


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


def overview() -> Dashboard:
    return (
        Dashboard("rh-parallel / RED overview")
        .uid("rh-parallel-overview")
        .tags(["rh-parallel"])
        .refresh("10s")
        .time("now-15m", "now")
        .with_row(Row("Rate, errors, duration"))
        .with_panel(
            series(
                "Throughput by outcome",
                "ops",
                query(f"sum by (outcome) (rate(rh_parallel_events_total[{RATE}]))", "{{outcome}}"),
                description="Items and events ending per second, by how they ended.",
            )
        )
        .with_panel(
            series(
                "Error ratio",
                "percentunit",
                query(
                    f'sum(rate(rh_parallel_events_total{{outcome!="completed"}}[{RATE}])) / '
                    f"clamp_min(sum(rate(rh_parallel_events_total[{RATE}])), 1e-9)",
                    "errors",
                ),
                description="Share of items that did not complete ok (failed, timed out, rejected, "
                "skipped, cancelled).",
            )
        )
        .with_panel(
            series(
                "Duration p50 / p95 / p99",
                "s",
                *quantiles("rh_parallel_event_duration_seconds", ""),
                description="Seconds items ran. Exemplar dots link to the item's trace in Jaeger.",
            )
        )
        .with_panel(
            series(
                "Throughput by kind",
                "ops",
                query(f"sum by (kind) (rate(rh_parallel_events_total[{RATE}]))", "{{kind}}"),
            )
        )
        .with_row(Row("Concurrency"))
        .with_panel(
            series(
                "In flight against the limit",
                "short",
                query("sum(rh_parallel_events_in_flight)", "in flight", "A"),
                query("sum(rh_parallel_workers_limit)", "limit (sum of max_workers)", "B"),
                description="Items running now, and the worker slots the running groups allow.",
            )
        )
        .with_panel(
            series(
                "Queue wait p50 / p95 / p99",
                "s",
                *quantiles("rh_parallel_queue_wait_seconds", ""),
                description="Seconds items waited for a worker slot before running.",
            )
        )
    )


def groups() -> Dashboard:
    selector = '{group=~"$group"}'
    return (
        Dashboard("rh-parallel / Groups")
        .uid("rh-parallel-groups")
        .tags(["rh-parallel"])
        .refresh("10s")
        .time("now-15m", "now")
        .with_variable(
            QueryVariable("group")
            .label("group")
            .datasource(PROMETHEUS)
            .query("label_values(rh_parallel_events_total, group)")
            .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
            .include_all(True)
            .multi(True)
            .all_value(".*")
        )
        .with_panel(
            Stat()
            .title("Active groups")
            .datasource(PROMETHEUS)
            .height(6)
            .span(6)
            .with_target(query("sum(rh_parallel_groups_active)"))
        )
        .with_panel(
            series(
                "Group outcomes",
                "short",
                query(
                    f"sum by (outcome) (increase(rh_parallel_groups_total[{RATE}]))", "{{outcome}}"
                ),
            )
            .span(18)
            .height(6)
        )
        .with_panel(
            series(
                "Group duration p95 by group",
                "s",
                query(
                    "histogram_quantile(0.95, sum by (le, group) "
                    f"(rate(rh_parallel_group_duration_seconds_bucket{selector}[{RATE}])))",
                    "{{group}}",
                ),
            )
        )
        .with_panel(
            series(
                "In flight by group",
                "short",
                query(f"sum by (group) (rh_parallel_events_in_flight{selector})", "{{group}}"),
            )
        )
        .with_panel(
            Table()
            .title("Per group")
            .datasource(PROMETHEUS)
            .height(10)
            .span(24)
            .description("Items per group and outcome over the dashboard's time range.")
            .with_target(
                query(
                    f"sum by (group, outcome) (increase(rh_parallel_events_total{selector}"
                    "[$__range]))"
                )
                .format(PromQueryFormat.TABLE)
                .instant()
            )
        )
    )


def resilience() -> Dashboard:
    return (
        Dashboard("rh-parallel / Resilience")
        .uid("rh-parallel-resilience")
        .tags(["rh-parallel"])
        .refresh("10s")
        .time("now-15m", "now")
        .with_panel(
            series(
                "Retries",
                "ops",
                query(
                    f"sum by (group, kind) (rate(rh_parallel_retries_total[{RATE}]))",
                    "{{group}} {{kind}}",
                ),
            )
        )
        .with_panel(
            StateTimeline()
            .title("Circuit breaker state (0 closed, 1 open, 2 half-open)")
            .datasource(PROMETHEUS)
            .height(8)
            .span(12)
            .with_target(query("max by (breaker) (rh_parallel_circuit_state)", "{{breaker}}"))
        )
        .with_panel(
            series(
                "Circuit breaker rejections",
                "ops",
                query(
                    f"sum by (breaker) (rate(rh_parallel_circuit_rejections_total[{RATE}]))",
                    "{{breaker}}",
                ),
            )
        )
        .with_panel(
            series(
                "Timeouts",
                "ops",
                outcome_rate("timed_out"),
            )
        )
        .with_panel(
            series(
                "Skipped (failed dependencies)",
                "ops",
                outcome_rate("skipped"),
            )
        )
        .with_panel(
            series(
                "Cancelled",
                "ops",
                outcome_rate("cancelled"),
            )
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
