"""Run the benchmarks and print a Markdown table of ratios: `python -m bench.run [NAME...]`."""

from __future__ import annotations

import argparse
import importlib

from bench.harness import Comparison, table

BENCHMARKS = (
    "startup",
    "unit_checks",
    "unit_runs",
    "parsers",
    "code_scan",
    "lint",
    "import_checks",
    "stream_checks",
    "report",
    "bridge",
    "risk_kernel",
    "resp_ab",
    "resp_pieces",
    "rl_agent",
    "rl_models",
    "service_checks",
    "messy_fleet",
    "incidents",
)


def main() -> None:
    """Run the chosen benchmarks (all by default) and print one table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("names", nargs="*", help=f"some of: {', '.join(BENCHMARKS)}")
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    rows: list[Comparison] = []
    unknown = set(args.names) - set(BENCHMARKS)
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(sorted(unknown))}")
    for name in args.names or BENCHMARKS:
        rows += importlib.import_module(f"bench.{name}").run(rounds=args.rounds)
    print(table(rows))


if __name__ == "__main__":
    main()
