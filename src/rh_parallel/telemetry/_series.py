"""The metrics observer's storage: label values, bucket arrays, and the samples of one group.

Everything here is plain Python updated by the observer's hooks and read by its collector at
scrape time (see :mod:`rh_parallel.telemetry.metrics`). Nothing is created before it is
needed: a histogram exists from its first observation, so a scrape carries no bucket series
that can only ever read zero.
"""

from __future__ import annotations

import time
from bisect import bisect_left

from prometheus_client.samples import Exemplar

from rh_parallel.execution.breaker import CircuitState
from rh_parallel.model.enums import GroupStatus, ResultStatus

__all__ = [
    "BREAKER_STATES",
    "DURATION_BUCKETS",
    "GROUP_OUTCOMES",
    "INVALID_LABEL",
    "NO_GROUP",
    "OTHER",
    "OUTCOMES",
    "WAIT_BUCKETS",
    "Histogram",
    "Series",
    "coerce_label",
    "exposable",
    "series_bound",
]

OTHER = "_other"  # the label value names fold into beyond their cap
INVALID_LABEL = "_invalid"  # a value that could not be turned into a str at all
NO_GROUP = "_none"  # the group label of events run outside any group

# Seconds: milliseconds (a tool call) to ten minutes (an agent run). Above the last bound an
# observation is in +Inf only, and histogram_quantile() reports the last bound, 600.
DURATION_BUCKETS = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    120.0,
    300.0,
    600.0,
)
# Seconds an item waits for a slot: short when slots are free, minutes behind long agent runs.
WAIT_BUCKETS = (0.001, 0.005, 0.025, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)
OUTCOMES = tuple(ResultStatus)  # str members: as dict keys they equal their values
GROUP_OUTCOMES = tuple(
    s.value for s in (GroupStatus.COMPLETED, GroupStatus.FAILED, GroupStatus.CANCELLED)
)
BREAKER_STATES = tuple(s.value for s in CircuitState)


def series_bound(
    groups: int,
    kinds: int = 4,
    ran_outcomes: int = 5,
    breakers: int = 0,
    limiters: int = 0,
    cache: bool = False,
) -> int:
    """The most series the observer exposes for ``groups`` group label values (count
    ``_none`` and ``_other`` among them), each with ``kinds`` kinds whose items ran with
    ``ran_outcomes`` distinct outcomes (completed, whose histogram always exists, counts as
    one; at most 5: completed, failed, timed_out, cancelled, rejected after a retry; skipped
    and recovered items never run), plus ``breakers`` and ``limiters`` label values. Bus and
    span drops are other collectors' (at most 51 and 1 series)."""
    histogram = len(DURATION_BUCKETS) + 3  # the buckets, +Inf, _sum and _count
    wait = len(WAIT_BUCKETS) + 3
    per_kind = len(OUTCOMES) + 1 + max(1, ran_outcomes) * histogram
    per_group = 2 + wait + histogram + kinds * per_kind
    per_group += 2 if cache else 0
    per_breaker = 2 + len(BREAKER_STATES)  # state, rejections, transitions by state
    return groups * per_group + len(GROUP_OUTCOMES) + 1 + breakers * per_breaker + limiters


def exposable(value: object) -> str | None:
    """``value`` as is when it is a plain str the exposition can encode, else ``None``."""
    if type(value) is str and (value.isascii() or _encodes(value)):
        return value
    return None


def _encodes(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate, e.g. from os.fsdecode of bad bytes
        return False
    return True


def coerce_label(value: object) -> str:
    """A str for any ``value``: str subclasses flattened, undecodable characters escaped,
    other objects through ``str()`` (``_invalid`` when even that raises)."""
    try:
        text = str.__str__(value) if isinstance(value, str) else str(value)
        if type(text) is not str:
            text = str.__str__(text)
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    except Exception:
        return INVALID_LABEL


class Histogram:
    """Bucket counts, a sum, and the latest exemplar per bucket."""

    __slots__ = ("bounds", "counts", "exemplars", "total")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.total = 0.0
        self.exemplars: dict[int, Exemplar] | None = None

    def observe(self, value: float, trace_id: str | None = None) -> None:
        bucket = bisect_left(self.bounds, value)
        self.counts[bucket] += 1
        self.total += value
        if trace_id is not None:
            if self.exemplars is None:
                self.exemplars = {}
            self.exemplars[bucket] = Exemplar({"trace_id": trace_id}, value, time.time())

    def buckets(self) -> list[tuple[str, float] | tuple[str, float, Exemplar]]:
        """Cumulative ``(le, count[, exemplar])`` pairs, ``+Inf`` last."""
        out: list[tuple[str, float] | tuple[str, float, Exemplar]] = []
        cumulative = 0
        exemplars = self.exemplars or {}
        for index, count in enumerate(list(self.counts)):
            cumulative += count
            bound = str(self.bounds[index]) if index < len(self.bounds) else "+Inf"
            exemplar = exemplars.get(index)
            out.append((bound, cumulative, exemplar) if exemplar else (bound, cumulative))
        return out


class Series:
    """Every sample of one ``group`` label value, resolved once per group.

    Prometheus' ``rate()`` and ``increase()`` only see an increment from a sample they already
    have: a series born at 1 hides its first event (the first failure of a kind, or the one
    four-minute agent run). So what a label needs to show its first event exists from just
    before: the queue-wait and group-duration histograms from the label's first group start;
    from a kind's first item (at its start), that kind's seven outcome counters and retry
    counter at 0, and its duration histogram of ``completed`` items. Durations of the other
    outcomes (19 series each, most of them for outcomes that rarely or never carry one:
    skipped and rejected items never run) start with their first observation.
    """

    __slots__ = (
        "cache",
        "durations",
        "events",
        "group_duration",
        "in_flight",
        "label",
        "queue_wait",
        "retries",
        "workers_limit",
    )

    def __init__(self, label: str) -> None:
        self.label = label
        self.in_flight = 0
        self.workers_limit = 0
        self.queue_wait: Histogram | None = None
        self.group_duration: Histogram | None = None
        self.events: dict[tuple[str, str], int] = {}
        self.durations: dict[tuple[str, str], Histogram] = {}
        self.retries: dict[str, int] = {}
        self.cache: dict[str, int] | None = None  # lookups by result (hit, miss), once used

    def add_group(self) -> None:
        """Create the histograms of the label's groups (once, at its first group start)."""
        if self.queue_wait is None:
            self.queue_wait = Histogram(WAIT_BUCKETS)
        if self.group_duration is None:
            self.group_duration = Histogram(DURATION_BUCKETS)

    def add_kind(self, kind: str) -> None:
        """Create the counters of ``kind`` (every outcome, and retries) at 0, and its
        duration histogram of completed items."""
        for outcome in OUTCOMES:
            self.events.setdefault((kind, outcome), 0)
        self.retries.setdefault(kind, 0)
        completed = (kind, ResultStatus.COMPLETED)
        if completed not in self.durations:
            self.durations[completed] = Histogram(DURATION_BUCKETS)
