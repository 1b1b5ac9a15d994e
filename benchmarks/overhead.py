"""Per-item overhead: rh-parallel beside asyncio.gather, TaskGroup and aiometer, one process.

python benchmarks/overhead.py --items 20000 --rounds 7

The same table as ``rh-parallel bench`` (same options). With ``--json``, one JSON object on
standard output instead (for benchmarks/report.py): the median seconds per item and per
one-item group of each contender.
"""

import argparse
import json
import sys

from rh_parallel.cli.bench import contenders, group_contenders, main, measure


def measure_json(argv: list[str]) -> dict[str, object]:
    """What ``rh-parallel bench`` measures, as data."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", required=True)
    parser.add_argument("--items", type=int, default=20_000)
    parser.add_argument("--limit", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--groups", type=int, default=2_000)
    parser.add_argument("--no-telemetry", action="store_true")
    args = parser.parse_args(argv)
    if min(args.items, args.limit, args.rounds, args.groups) < 1:
        parser.error("--items, --limit, --rounds and --groups must be >= 1")
    per_item = measure(contenders(not args.no_telemetry), args.items, args.limit, args.rounds)
    per_group = measure(group_contenders(), args.groups, 1, args.rounds)
    return {
        "items": args.items,
        "limit": args.limit,
        "rounds": args.rounds,
        "groups": args.groups,
        "per_item": per_item,
        "per_group": per_group,
    }


if __name__ == "__main__":
    if "--json" in sys.argv[1:]:
        print(json.dumps(measure_json(sys.argv[1:])))
        sys.exit(0)
    sys.exit(main(sys.argv[1:]))
