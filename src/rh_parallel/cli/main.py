"""The ``rh-parallel`` command: ``demo`` runs the simulated workflow, ``bench`` the benchmark,
``runs`` lists, shows and deletes the runs saved in a run store.

Exit statuses are those of :mod:`rh_parallel.cli.process` for every command. Whatever a command
does not handle itself, this entry point turns into a status instead of a traceback: a reader
that went away (141), and a signal outside a run (130 / 143).
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Sequence

from rh_parallel.cli.process import (
    EXIT_PIPE,
    Interrupted,
    say,
    signal_status,
    silence_stdout,
)

__all__ = ["main"]

USAGE = (
    "usage: rh-parallel {demo,bench,runs} [options]\n\n"
    "  demo   run a simulated agent workflow (rh-parallel demo --help)\n"
    "  bench  per-item overhead beside asyncio and aiometer (rh-parallel bench --help)\n"
    "  runs   list, show or delete the runs saved in a store: rh-parallel runs "
    "{list,show,delete} --store PATH (rh-parallel runs --help)"
)


def _dispatch(args: list[str]) -> int:
    if not args or args[0] in {"-h", "--help"}:
        print(USAGE)
        return 0 if args else 2
    command, rest = args[0], args[1:]
    if command == "demo":
        from rh_parallel.cli.demo import main as demo_main

        return demo_main(rest)
    if command == "bench":
        from rh_parallel.cli.bench import main as bench_main

        return bench_main(rest)
    if command == "runs":
        from rh_parallel.cli.runs import main as runs_main

        return runs_main(rest)
    say(f"rh-parallel: unknown command {command!r}; use demo, bench or runs")
    return 2


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command and return its exit status."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        return _dispatch(args)
    except BrokenPipeError:
        silence_stdout()  # or Python's own flush at exit fails again, with a message
        return EXIT_PIPE
    except Interrupted as stop:  # a signal that a command's own handling let through
        return signal_status(stop.signum)
    except KeyboardInterrupt:  # Ctrl-C while importing, before any handling
        return signal_status(signal.SIGINT)


def _entry() -> None:  # pragma: no cover - console script
    sys.exit(main())


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
