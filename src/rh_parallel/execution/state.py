"""``ExecutionState``: the user's entry point to the executor."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Never, Unpack, overload

from rh_parallel._old_names import install, public_dir
from rh_parallel.execution.breaker import CircuitBreaker
from rh_parallel.execution.event_recall import run_recalled
from rh_parallel.execution.items import close_work
from rh_parallel.execution.manager import ParallelExecutionManager
from rh_parallel.execution.options import GroupOptions
from rh_parallel.execution.rate import AdaptiveLimit, RateLimit
from rh_parallel.execution.recall import Recall
from rh_parallel.execution.records import RecordPublisher
from rh_parallel.execution.retry import RetryPolicy
from rh_parallel.execution.slots import GlobalLimiter
from rh_parallel.model.enums import ErrorStrategy, ResultStatus
from rh_parallel.model.events import EventInvocation
from rh_parallel.model.results import ExecutionResult
from rh_parallel.runtime.bus import EventBus
from rh_parallel.runtime.observer import ExecutionObserver, ItemInfo, ObserverSet
from rh_parallel.runtime.runs import check_run_id, new_run_id
from rh_parallel.runtime.scope import Scope, current_scope
from rh_parallel.store.protocols import ResultCache, RunStore

if TYPE_CHECKING:
    from rh_parallel import _migration as legacy

__all__ = ["ExecutionState", "set_default_observers"]

logger = logging.getLogger("rh_parallel.store")

ObserversFactory = Callable[[], Sequence[ExecutionObserver]]
_default_observers: ObserversFactory = tuple


def set_default_observers(factory: ObserversFactory) -> None:
    """Set what observers a state gets when not given ``observers=`` (the facade wires
    tracing and Prometheus metrics here)."""
    global _default_observers
    _default_observers = factory


class ExecutionState:
    """Runs events and parallel groups, and owns what they share.

    ``event_bus`` receives the lifecycle records (a new bus when omitted);
    ``global_max_workers`` bounds the items running at once across every group of this state;
    ``observers`` replaces the default observers (tracing and Prometheus metrics), ``[]`` runs
    with none; ``capture_io`` puts results, truncated to ``max_io_chars`` characters, into
    records (off: results may be private); ``rate_limit`` (a ``RateLimit``) paces the items
    of every group of this state, on top of a group's own ``rate_limit``.

    ``run_id`` names the run (a fresh, time-sortable id when omitted): it is on every record
    and span, and group ids derive from it. With a ``store`` (``rh_parallel.store``), completed
    items are saved under it, and running the program again with the same ``run_id`` recovers
    them instead of running them again. With a ``cache``, cacheable actors and items added with
    ``cache_key=`` are served from it::

        state = ExecutionState(store=SQLiteStore("runs.db"), run_id="ingest-2026-11-28",
                               cache=SQLiteCache("cache.db", ttl=86_400))
    """

    def __init__(
        self,
        event_bus: EventBus | None = None,
        global_max_workers: int | None = None,
        *,
        observers: Iterable[ExecutionObserver] | None = None,
        capture_io: bool = False,
        max_io_chars: int = 200,
        run_id: str | None = None,
        store: RunStore | None = None,
        cache: ResultCache | None = None,
        rate_limit: RateLimit | None = None,
    ) -> None:
        if global_max_workers is not None:
            if isinstance(global_max_workers, bool) or not isinstance(global_max_workers, int):
                raise TypeError(
                    f"global_max_workers={global_max_workers!r} takes an int >= 1, or None for "
                    "no state-wide limit"
                )
            if global_max_workers < 1:
                raise ValueError(
                    f"global_max_workers={global_max_workers!r} must be an int >= 1, or None "
                    "for no state-wide limit"
                )
        if event_bus is not None and not isinstance(event_bus, EventBus):
            raise TypeError(f"event_bus takes an EventBus(), got {event_bus!r}")
        if not isinstance(capture_io, bool):
            raise TypeError(f"capture_io takes True or False, got {capture_io!r}")
        if isinstance(max_io_chars, bool) or not isinstance(max_io_chars, int):
            raise TypeError(f"max_io_chars takes an int >= 2, got {max_io_chars!r}")
        if max_io_chars < 2:
            raise ValueError(f"max_io_chars={max_io_chars} must be >= 2 (e.g. 200)")
        if store is not None and not isinstance(store, RunStore):
            raise TypeError(
                f"store takes a run store such as rh_parallel.store.SQLiteStore('runs.db'), got "
                f"{store!r}"
            )
        if cache is not None and not isinstance(cache, ResultCache):
            raise TypeError(
                f"cache takes a result cache such as rh_parallel.store.SQLiteCache('cache.db'), "
                f"got {cache!r}"
            )
        if rate_limit is not None and not isinstance(rate_limit, RateLimit):
            raise TypeError(
                f"rate_limit takes a RateLimit(rate, per=1.0, name=...), got {rate_limit!r}"
            )
        self.rate_limit: RateLimit | None = rate_limit  # every group of this state waits for it too
        """The state-wide ``RateLimit`` every group also waits for, or ``None``."""
        self.run_id: str = new_run_id() if run_id is None else check_run_id(run_id)
        """This run's id: the ``run_id`` given, or a fresh time-sortable one. It is on every
        record and span; pass it again, with the same store, to resume the run."""
        self.store: RunStore | None = store
        """The run store completed items are saved to (``None``: nothing is saved)."""
        self.cache: ResultCache | None = cache
        """The result cache that serves cacheable actors and ``cache_key=`` items, or
        ``None``."""
        self.recall = (
            Recall(self.run_id, store, cache, fresh=run_id is None)
            if store is not None or cache is not None
            else None
        )
        if observers is not None and not isinstance(observers, Iterable):
            raise TypeError(
                f"observers takes a list of ExecutionObserver, got {observers!r}; [] runs with none"
            )
        self.event_bus: EventBus = event_bus if event_bus is not None else EventBus()
        """The bus records are published on: the one given, or a new one. Subscribe printers
        and handlers to it."""
        self.global_max_workers: int | None = global_max_workers
        """The cap on items running at once across all of this state's groups (``None``: no
        cap)."""
        # not an asyncio.Semaphore: that binds to the first loop, and a state serves
        # successive asyncio.run() calls
        self.global_limiter = (
            GlobalLimiter(global_max_workers) if global_max_workers is not None else None
        )
        chosen = _default_observers() if observers is None else list(observers)
        for observer in chosen:
            if not isinstance(observer, ExecutionObserver):
                raise TypeError(
                    f"observers takes ExecutionObserver instances, got {observer!r}; subclass "
                    "rh_parallel.runtime.ExecutionObserver"
                )
        self.observer_set = ObserverSet(chosen)
        self.publisher = RecordPublisher(self.event_bus, capture_io, max_io_chars, self.run_id)
        self.root_scope = Scope("")

    @property
    def observers(self) -> tuple[ExecutionObserver, ...]:
        """The observers this state runs (the default ones unless ``observers=`` was given)."""
        return self.observer_set.observers

    def current_item_info(self) -> ItemInfo | None:
        """The observer view of the item whose code runs now (for nested groups)."""
        scope = current_scope.get()
        return scope.item if scope is not None else None

    def current_address(self) -> str | None:
        """The address of the item or sequential event whose code runs now (``docs/doc-3``,
        or ``docs/doc-3/pages/page-1`` in a nested group), or None outside any.

        It is the same on every attempt and on every resume of the run, so it is what to derive
        an idempotency key from: ``f"{state.run_id}/{state.current_address()}"``.
        """
        scope = current_scope.get()
        return (scope.address or None) if scope is not None else None

    # -- groups ---------------------------------------------------------------------------

    def parallel(
        self,
        max_workers: int | AdaptiveLimit = 5,
        *legacy_positions: Never,
        name: str | None = None,
        error_strategy: ErrorStrategy = ErrorStrategy.FAIL_SLOW,
        failure_threshold: int | float | None = None,
        timeout: float | None = None,
        event_timeout: float | None = None,
        retry: RetryPolicy | None = None,
        circuit_breaker: CircuitBreaker | None = None,
        executor: Any = None,
        rate_limit: RateLimit | None = None,
        **legacy_options: Unpack[legacy.LegacyGroupOptions],
    ) -> ParallelExecutionManager:
        """A new parallel group, used as ``async with state.parallel(...) as p:``.

        ``max_workers`` bounds the items running at once; ``error_strategy`` and
        ``failure_threshold`` decide what a failure does; ``timeout`` bounds the whole group,
        ``event_timeout`` each attempt of each item; ``retry`` and ``circuit_breaker`` apply to
        every item. ``executor`` (a ``concurrent.futures.Executor`` such as a process pool, or
        ``rh_parallel.ray.RayExecutor()``) runs the group's callable items (``p.add(fn, x)``)
        there instead of on the loop; event invocations and coroutines stay on the loop.
        ``rate_limit`` (a ``RateLimit``, shareable across groups) spaces the items' starts;
        ``max_workers`` may be an ``AdaptiveLimit`` that follows the provider's capacity.
        ``legacy_options``: RH-Agents' ``max_retries=`` / ``retry_delay=``, still accepted
        with a DeprecationWarning that spells the ``retry=`` to pass (see the
        [migration guide](../migration.md)). Only ``max_workers`` is positional: RH-Agents'
        ``state.parallel(5, ErrorStrategy.FAIL_FAST)`` is a TypeError that spells the keywords
        (``legacy_positions``).
        Examples::

            # stop at the first failure and re-raise it
            async with state.parallel(4, error_strategy=ErrorStrategy.FAIL_FAST) as p: ...

            # give up once a fifth of the group failed (FailureThresholdExceeded, .results)
            async with state.parallel(8, failure_threshold=0.2) as p: ...

            # 60 s for the whole group (GroupTimeoutError), 10 s per attempt (timed_out items)
            async with state.parallel(8, timeout=60, event_timeout=10) as p: ...

            # an item that waits for others and reads their results
            p.add("report", report, p, depends_on=["a", "b"])   # report reads p.result_of()
        """
        if legacy_positions:  # RH-Agents' parallel(5, ErrorStrategy.FAIL_FAST): refused
            from rh_parallel import _migration

            _migration.refuse_positions(legacy_positions)
        if legacy_options:  # RH-Agents' max_retries= / retry_delay=, with a warning
            from rh_parallel import _migration

            retry = _migration.group_retry(legacy_options, retry)
        options = GroupOptions(
            max_workers=max_workers,
            error_strategy=error_strategy,
            failure_threshold=failure_threshold,
            timeout=timeout,
            event_timeout=event_timeout,
            retry=retry,
            circuit_breaker=circuit_breaker,
            executor=executor,
            rate_limit=rate_limit,
        )
        return ParallelExecutionManager(self, name, options)

    @overload
    async def parallel_execute(
        self, items: Mapping[Any, Any], max_workers: int = ..., **options: Any
    ) -> dict[Any, ExecutionResult]: ...

    @overload
    async def parallel_execute(
        self, items: Iterable[Any], max_workers: int = ..., **options: Any
    ) -> list[ExecutionResult]: ...

    async def parallel_execute(
        self, items: Iterable[Any] | Mapping[Any, Any], max_workers: int = 5, **options: Any
    ) -> list[ExecutionResult] | dict[Any, ExecutionResult]:
        """Run ``items`` as one group: a list gives a list, a mapping gives a dict with the
        mapping's own keys (string keys also name the items in spans and printers)."""
        pairs: list[tuple[Any, Any]] = (
            list(items.items()) if isinstance(items, Mapping) else list(enumerate(items))
        )
        try:
            group = self.parallel(max_workers, **options)
            for key, work in pairs:
                named = isinstance(items, Mapping) and isinstance(key, str) and not key.isdecimal()
                group.add(work, name=key if named and key else None)
        except BaseException:
            for _, work in pairs:
                close_work(work)
            raise
        results = await group.gather()
        if isinstance(items, Mapping):
            return {key: result for (key, _), result in zip(pairs, results, strict=True)}
        return results

    # -- sequential events ----------------------------------------------------------------

    async def run_event(self, invocation: EventInvocation) -> ExecutionResult:
        """Run one event invocation on its own: records, observers, and a result.

        A handler exception becomes ``ok=False``; cancellation is recorded and re-raised.
        """
        event = invocation.event
        actor = event.actor
        parent = current_scope.get() or self.root_scope
        address = parent.child_address(actor.name)
        observers = self.observer_set
        info = None
        if observers:
            info = ItemInfo(None, actor.name, address, actor.event_type, actor, None, self.run_id)
            info.attempts = 1
        scope = Scope(
            address, parent.depth + 1, parent.group_id, parent.lease, info, parent.children
        )
        token = current_scope.set(scope)
        try:
            if self.recall is not None:
                return await run_recalled(self, self.recall, invocation, parent, info)
            return await self.run_observed(invocation, info)
        finally:
            current_scope.reset(token)

    async def run_observed(
        self, invocation: EventInvocation, info: ItemInfo | None
    ) -> ExecutionResult:
        if info is None:
            return await self._run_body(invocation, None)
        observers = self.observer_set
        entered = observers.enter_item(info)
        try:
            info.running = True
            observers.on_item_start(info)
            return await self._run_body(invocation, info)
        finally:
            observers.exit_item(entered)

    async def _run_body(
        self, invocation: EventInvocation, info: ItemInfo | None
    ) -> ExecutionResult:
        event = invocation.event
        scope = current_scope.get()
        assert scope is not None
        address = scope.address
        publisher = self.publisher
        if publisher.bus.has_subscribers:
            publisher.event_started(event, address)
        began = time.perf_counter()
        cancelled: asyncio.CancelledError | None = None
        try:
            value = await invocation.run_body()
        except asyncio.CancelledError as exc:
            cancelled = exc
            result = ExecutionResult.failure(exc, ResultStatus.CANCELLED, name=event.actor.name)
        except Exception as exc:
            result = ExecutionResult.failure(exc, name=event.actor.name)
        else:
            result = ExecutionResult.success(value, name=event.actor.name)
        result.execution_time = time.perf_counter() - began
        if info is not None:
            self.observer_set.on_item_end(info, result)
        if publisher.bus.has_subscribers:
            publisher.event_ended(event, address, result)
        if cancelled is not None:
            raise cancelled
        return result

    async def aclose(self) -> None:
        """Deliver every queued record, stop the bus's dispatchers, and wait until the store
        and the cache have committed what they queued (they stay open: the caller owns them)."""
        await self.event_bus.aclose()
        for backend in (self.store, self.cache):
            if backend is None:
                continue
            try:
                if backend.blocking:
                    await asyncio.get_running_loop().run_in_executor(None, backend.sync)
                else:
                    backend.sync()
            except Exception:
                logger.warning("could not commit %r; ignored", backend, exc_info=True)

    async def __aenter__(self) -> ExecutionState:
        return self

    def __dir__(self) -> list[str]:
        return public_dir(self)  # without RH-Agents' names, which only raise

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


install(ExecutionState)  # RH-Agents' state.history, ...: an AttributeError naming the fix
