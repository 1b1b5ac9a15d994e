"""The runtime layer: the event bus, per-task addressing and the observer interface."""

from rh_parallel.runtime.bus import EventBus, Subscription
from rh_parallel.runtime.observer import (
    ExecutionObserver,
    GroupInfo,
    ItemInfo,
    ObserverSet,
)
from rh_parallel.runtime.scope import Lease, NestedRun, Scope, current_scope

__all__ = [
    "EventBus",
    "ExecutionObserver",
    "GroupInfo",
    "ItemInfo",
    "Lease",
    "NestedRun",
    "ObserverSet",
    "Scope",
    "Subscription",
    "current_scope",
]
