"""``RayExecutor``: run a group's callable items as Ray tasks, on this machine or a cluster.

Install the extra (``pip install 'rh-parallel[ray]'``); ``ray`` is imported only when a
``RayExecutor`` is first used. Point Ray at a cluster with ``ray.init(address=...)`` before
running; nothing else changes::

    from rh_parallel.ray import RayExecutor

    async with state.parallel(8, name="embed", executor=RayExecutor(num_cpus=1)) as p:
        for chunk in chunks:
            p.add(embed, chunk)          # a function and its arguments, shipped to Ray

Keyword arguments are Ray's task options (``num_cpus``, ``num_gpus``, ``resources``,
``runtime_env``, ...). Ray's own task retries default to 0 here (``max_retries``): the
group's ``retry`` policy decides, as for local items. A timeout or cancellation cancels the
Ray task (``ray.cancel``); a worker that dies fails its item with ``WorkerLostError``; an
exception raised by the function comes back as itself (not wrapped in ``RayTaskError``).
``configure_telemetry=True`` sets up tracing in each worker from the driver's ``OTEL_*``
environment, so spans made there join the item's trace.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
from collections.abc import Callable
from typing import Any

from rh_parallel.exceptions import WorkerLostError
from rh_parallel.execution.executors import invoke

__all__ = ["RayExecutor"]

_configured = False
_configure_lock = threading.Lock()


def _ray() -> Any:
    try:
        import ray
    except ImportError:
        raise ImportError(
            "RayExecutor needs Ray: pip install 'rh-parallel[ray]' (or pip install ray)"
        ) from None
    return ray


def _configure_worker(environment: dict[str, str]) -> None:
    """Set up tracing once in this worker process, from the driver's ``OTEL_*`` settings."""
    global _configured
    with _configure_lock:
        if _configured:
            return
        _configured = True
        for key, value in environment.items():
            os.environ.setdefault(key, value)
        from rh_parallel.telemetry import configure

        configure(service_name="rh-parallel-worker")


def run_in_worker(
    function: Callable[..., Any],
    args: tuple[Any, ...],
    carrier: dict[str, str],
    telemetry: dict[str, str] | None,
) -> Any:
    """The body of every Ray task: the shipped call under the item's trace context."""
    if telemetry is not None:
        _configure_worker(telemetry)
    # flushed after each task: a worker may idle or be killed before its batch is due
    return invoke(function, args, carrier, flush=telemetry is not None)


class RayExecutor:
    """Runs callable items as Ray tasks (``ray.remote(**options)``), one task per attempt."""

    def __init__(self, *, configure_telemetry: bool = False, **ray_options: Any) -> None:
        if not isinstance(configure_telemetry, bool):
            raise TypeError(f"configure_telemetry takes True or False, got {configure_telemetry!r}")
        ray_options.setdefault("max_retries", 0)
        self.ray_options = ray_options
        self.configure_telemetry = configure_telemetry
        self._telemetry = (
            {k: v for k, v in os.environ.items() if k.startswith("OTEL_")}
            if configure_telemetry
            else None
        )
        self._task: Any = None
        self._lock = threading.Lock()

    def _remote(self) -> Any:
        with self._lock:
            if self._task is None:
                ray = _ray()
                try:
                    self._task = ray.remote(**self.ray_options)(run_in_worker)
                except (TypeError, ValueError) as exc:
                    raise TypeError(f"{self!r}: Ray refused these task options ({exc})") from None
            return self._task

    def check(self, function: Callable[..., Any], args: tuple[Any, ...], item: str) -> None:
        """Refuse work Ray cannot serialize, naming the item (Ray pickles with cloudpickle:
        lambdas and local functions are fine, open files, locks and sockets are not)."""
        ray = _ray()
        self._remote()  # bad task options fail here, at add(), too
        for what, value in (
            ("its function", function),
            *((f"argument {n} ({type(a).__name__})", a) for n, a in enumerate(args)),
        ):
            try:
                ray.cloudpickle.dumps(value)
            except Exception as exc:
                raise TypeError(
                    f"item {item!r}: {what} cannot be sent to Ray ({type(exc).__name__}: "
                    f"{exc}); pass plain data, or create the resource inside the function"
                ) from None

    async def run(
        self, function: Callable[..., Any], args: tuple[Any, ...], carrier: dict[str, str]
    ) -> Any:
        ray = _ray()
        ref = self._remote().remote(function, args, carrier, self._telemetry)
        try:
            return await ref
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):  # already finished, or the cluster went away
                ray.cancel(ref)
            raise
        except ray.exceptions.RayTaskError as exc:
            cause = getattr(exc, "cause", None)
            if isinstance(cause, Exception):
                raise cause from None  # the function's own exception, as a local item's
            raise
        except (ray.exceptions.WorkerCrashedError, ray.exceptions.NodeDiedError) as exc:
            raise WorkerLostError(
                f"the Ray worker running {getattr(function, '__qualname__', function)!r} died "
                f"({type(exc).__name__}); retry WorkerLostError to run it again"
            ) from exc

    def __repr__(self) -> str:
        options = ", ".join(f"{k}={v!r}" for k, v in self.ray_options.items())
        return f"RayExecutor({options})"
