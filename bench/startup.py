"""CLI start-up: `qtctl --version` against `python -c pass`, both as fresh processes."""

from __future__ import annotations

import subprocess
import sys

from bench.harness import Comparison, interleave


def _spawn(*argv: str) -> None:
    subprocess.run([sys.executable, *argv], check=True, stdout=subprocess.DEVNULL)


def run(rounds: int = 15) -> list[Comparison]:
    """Median wall time of both start-ups."""
    rows = []
    for args in (("--version",), ("doctor", "--help")):
        cand, base = interleave(
            lambda a=args: _spawn("-m", "qtctl", *a), lambda: _spawn("-c", "pass"), rounds
        )
        rows.append(
            Comparison(
                name="CLI start-up",
                candidate=f"qtctl {' '.join(args)}",
                baseline="python -c pass",
                target="median <= 250 ms",
                candidate_times=cand,
                baseline_times=base,
            )
        )
    return rows
