"""Circuit breaker: stop calling a downstream service that keeps failing."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from enum import StrEnum
from typing import Any, ParamSpec, TypeVar

from rh_parallel.exceptions import CircuitOpenError
from rh_parallel.execution.checks import check_count, check_seconds, show

__all__ = ["BreakerPermit", "CircuitBreaker", "CircuitState"]

P = ParamSpec("P")
T = TypeVar("T")

StateListener = Callable[[str, str], None]


class CircuitState(StrEnum):
    """``closed``: calls run; ``open``: calls are rejected; ``half_open``: a few probes run."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"

    @property
    def gauge_value(self) -> int:
        """0 closed, 1 open, 2 half-open (the ``rh_parallel_circuit_state`` gauge)."""
        return {"closed": 0, "open": 1, "half_open": 2}[self.value]


class BreakerPermit:
    """Leave to make one call; report how it went exactly once."""

    __slots__ = ("_breaker", "_done", "probe")

    def __init__(self, breaker: CircuitBreaker, probe: bool) -> None:
        self._breaker = breaker
        self.probe = probe
        self._done = False

    def success(self, on_change: StateListener | None = None) -> None:
        if not self._done:
            self._done = True
            self._breaker._on_success(self, on_change)

    def failure(self, on_change: StateListener | None = None) -> None:
        if not self._done:
            self._done = True
            self._breaker._on_failure(self, on_change)

    def release(self) -> None:
        """The call did not happen or was cancelled: it counts neither way."""
        if not self._done:
            self._done = True
            if self.probe:
                self._breaker._probes -= 1


_PERMITS: ContextVar[tuple[BreakerPermit, ...]] = ContextVar("rh_parallel_breaker", default=())


class CircuitBreaker:
    """Rejects calls at once after ``failure_threshold`` consecutive failures.

    Closed -> open after the threshold of consecutive failed calls; while open every call is
    rejected with :class:`CircuitOpenError` without running; ``recovery_timeout`` seconds later
    it half-opens and lets at most ``half_open_max_calls`` probes run at a time; a probe's success
    closes it, a failure re-opens it. Share one instance per downstream service, across groups.

    ``name`` is a non-empty str (it labels the ``rh_parallel_circuit_*`` metrics);
    ``failure_threshold`` and ``half_open_max_calls`` are ints >= 1; ``recovery_timeout`` is a
    finite number of seconds > 0 (an infinite one would keep the breaker open for good: call
    :meth:`reset` to close a breaker by hand instead). Anything else is refused at once.

    Example::

        search_api = CircuitBreaker("search-api", failure_threshold=3, recovery_timeout=10)
        async with state.parallel(max_workers=4, circuit_breaker=search_api) as p:
            ...
        async with search_api:            # or guard a single call
            await call_search()
        await search_api.call(call_search, "query")
    """

    def __init__(
        self,
        name: str,
        failure_threshold: int = 5,
        recovery_timeout: float = 30.0,
        half_open_max_calls: int = 1,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not isinstance(name, str):
            raise TypeError(
                f"CircuitBreaker(name={show(name)}): a breaker's name is a non-empty str naming "
                'the service it guards (it labels metrics); pass e.g. CircuitBreaker("search-api")'
            )
        if not name.strip():
            raise ValueError(
                f"CircuitBreaker(name={name!r}): a breaker's name is a non-empty str naming the "
                'service it guards; pass e.g. CircuitBreaker("search-api")'
            )
        failure_threshold = check_count(
            "CircuitBreaker",
            "failure_threshold",
            failure_threshold,
            "it counts the consecutive failed calls that open the breaker",
        )
        recovery_timeout = check_seconds(
            "CircuitBreaker", "recovery_timeout", recovery_timeout, positive=True, example="30.0"
        )
        half_open_max_calls = check_count(
            "CircuitBreaker",
            "half_open_max_calls",
            half_open_max_calls,
            "it caps the probe calls a half-open breaker lets run at once",
        )
        if not callable(clock):
            raise TypeError(
                f"CircuitBreaker(clock={show(clock)}) must be a function returning seconds, "
                "e.g. clock=time.monotonic"
            )
        self.name = name
        self.failure_threshold = failure_threshold
        self.recovery_timeout = recovery_timeout
        self.half_open_max_calls = half_open_max_calls
        self._clock = clock
        self._state = CircuitState.CLOSED
        self._failures = 0
        self._opened_at = 0.0
        self._probes = 0
        self.rejections: int = 0
        """Calls rejected so far (open, or half-open with every probe taken)."""

    @property
    def state(self) -> CircuitState:
        """The state now (an open breaker whose recovery time passed reads ``half_open``)."""
        if self._state is CircuitState.OPEN and self._recovery_due():
            return CircuitState.HALF_OPEN
        return self._state

    @property
    def consecutive_failures(self) -> int:
        """Failed calls in a row while the breaker was closed; a success sets it back to 0."""
        return self._failures

    def _recovery_due(self) -> bool:
        return self._clock() - self._opened_at >= self.recovery_timeout

    def _set(self, state: CircuitState, on_change: StateListener | None) -> None:
        if state is not self._state:
            self._state = state
            if on_change is not None:
                on_change(self.name, state.value)

    def acquire(self, on_change: StateListener | None = None) -> BreakerPermit | None:
        """A permit for one call, or ``None`` when the call must be rejected."""
        if self._state is CircuitState.CLOSED:
            return BreakerPermit(self, probe=False)
        if self._state is CircuitState.OPEN:
            if not self._recovery_due():
                self.rejections += 1
                return None
            self._probes = 0
            self._set(CircuitState.HALF_OPEN, on_change)
        if self._probes >= self.half_open_max_calls:
            self.rejections += 1
            return None
        self._probes += 1
        return BreakerPermit(self, probe=True)

    def retry_after(self) -> float | None:
        """Seconds until an open breaker half-opens (``None`` unless open)."""
        if self._state is not CircuitState.OPEN:
            return None
        return max(0.0, self._opened_at + self.recovery_timeout - self._clock())

    def rejection(self) -> CircuitOpenError:
        """The error a rejected call gets."""
        return CircuitOpenError(self.name, self.retry_after())

    def _on_success(self, permit: BreakerPermit, on_change: StateListener | None) -> None:
        if permit.probe:
            self._probes -= 1
            if self._state is CircuitState.HALF_OPEN:
                self._failures = 0
                self._set(CircuitState.CLOSED, on_change)
        elif self._state is CircuitState.CLOSED:
            self._failures = 0

    def _on_failure(self, permit: BreakerPermit, on_change: StateListener | None) -> None:
        if permit.probe:
            self._probes -= 1
            if self._state is CircuitState.HALF_OPEN:
                self._trip(on_change)
        elif self._state is CircuitState.CLOSED:
            self._failures += 1
            if self._failures >= self.failure_threshold:
                self._trip(on_change)

    def _trip(self, on_change: StateListener | None) -> None:
        self._opened_at = self._clock()
        self._set(CircuitState.OPEN, on_change)

    def reset(self) -> None:
        """Close the breaker and forget past failures."""
        self._state = CircuitState.CLOSED
        self._failures = 0
        self._probes = 0

    async def call(self, fn: Callable[P, Awaitable[T]], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run ``await fn(*args, **kwargs)`` under the breaker (raises CircuitOpenError)."""
        async with self:
            return await fn(*args, **kwargs)

    async def __aenter__(self) -> CircuitBreaker:
        permit = self.acquire()
        if permit is None:
            raise self.rejection()
        _PERMITS.set((*_PERMITS.get(), permit))
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, *rest: Any) -> None:
        permits = _PERMITS.get()
        permit = permits[-1]
        _PERMITS.set(permits[:-1])
        if exc_type is None:
            permit.success()
        elif issubclass(exc_type, Exception):
            permit.failure()
        else:
            permit.release()

    def __repr__(self) -> str:
        return f"CircuitBreaker({self.name!r}, state={self.state.value})"
