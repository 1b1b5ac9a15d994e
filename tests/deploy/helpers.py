"""Helpers for the tests of the deploy stack: where its files are, and what the dashboards ask."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
DASHBOARDS = ROOT / "grafana" / "dashboards"


def load_dashboards() -> dict[str, dict[str, Any]]:
    return {p.name: json.loads(p.read_text()) for p in sorted(DASHBOARDS.glob("*.json"))}


def panel_queries() -> list[tuple[str, str, str]]:
    """(dashboard, panel title, PromQL) for every target of every panel."""
    queries = []
    for name, dashboard in load_dashboards().items():
        for panel in dashboard["panels"]:
            for target in panel.get("targets") or []:
                queries.append((name, panel["title"], target["expr"]))
    return queries
