"""The metrics table of docs/telemetry-reference.md is the metrics the library serves: the same
names, in the same order, of the same types (a metric added, renamed or removed without the
page fails here)."""

from __future__ import annotations

import re

from rh_parallel.telemetry import METRIC_NAMES
from rh_parallel.telemetry.bus_metrics import register_bus_metrics
from rh_parallel.telemetry.span_drops import register_span_drops
from rh_parallel.testing import InMemoryTelemetry
from tests.docs.helpers import ROOT

ROW = re.compile(r"^\| `(rh_parallel_\w+)` \| (counter|gauge|histogram)\b", re.MULTILINE)


def test_the_metrics_table_lists_every_metric_with_its_type() -> None:
    page = (ROOT / "docs/telemetry-reference.md").read_text("utf-8")
    documented = ROW.findall(page)
    assert [name for name, _ in documented] == list(METRIC_NAMES)
    registry = InMemoryTelemetry().registry  # the observer's metrics, and the process-wide
    register_bus_metrics(registry)  # ones configure() serves beside them
    register_span_drops(registry)
    served = {family.name: family.type for family in registry.collect()}
    for name, kind in documented:
        assert served[name.removesuffix("_total")] == kind, name
