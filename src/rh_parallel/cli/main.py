"""The ``rh-parallel`` command: ``demo`` runs the simulated workflow, ``bench`` the benchmark."""

from __future__ import annotations

import sys
from collections.abc import Sequence

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in {"-h", "--help"}:
        print(
            "usage: rh-parallel {demo,bench} [options]\n\n"
            "  demo   run a simulated agent workflow (rh-parallel demo --help)\n"
            "  bench  per-item overhead beside asyncio and aiometer (rh-parallel bench --help)"
        )
        return 0 if args else 2
    command, rest = args[0], args[1:]
    if command == "demo":
        from rh_parallel.cli.demo import main as demo_main

        return demo_main(rest)
    if command == "bench":
        from rh_parallel.cli.bench import main as bench_main

        return bench_main(rest)
    print(f"rh-parallel: unknown command {command!r}; use demo or bench", file=sys.stderr)
    return 2


def _entry() -> None:  # pragma: no cover - console script
    sys.exit(main())


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
