"""Side-by-side timing: a candidate and its baseline, interleaved in one process, as ratios."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Comparison:
    """One benchmark: what is measured, against what, and the target it must meet."""

    name: str
    candidate: str
    baseline: str
    target: str
    candidate_times: tuple[float, ...]
    baseline_times: tuple[float, ...]

    @property
    def candidate_median(self) -> float:
        """Median seconds of the candidate."""
        return statistics.median(self.candidate_times)

    @property
    def baseline_median(self) -> float:
        """Median seconds of the baseline."""
        return statistics.median(self.baseline_times)

    @property
    def ratio(self) -> float:
        """candidate / baseline (below 1: faster than the baseline)."""
        return self.candidate_median / self.baseline_median


def interleave(
    candidate: Callable[[], object], baseline: Callable[[], object], rounds: int, warmup: int = 2
) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Time both callables alternately, so machine noise hits both alike."""
    for _ in range(warmup):
        candidate()
        baseline()
    cand: list[float] = []
    base: list[float] = []
    for _ in range(rounds):
        for fn, sink in ((candidate, cand), (baseline, base)):
            started = time.perf_counter()
            fn()
            sink.append(time.perf_counter() - started)
    return tuple(cand), tuple(base)


def table(rows: list[Comparison]) -> str:
    """A Markdown table of results, ready for the README."""
    lines = [
        "| benchmark | candidate | median | baseline | median | ratio | target |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r.name} | {r.candidate} | {r.candidate_median * 1000:.1f} ms | {r.baseline} | "
            f"{r.baseline_median * 1000:.1f} ms | {r.ratio:.2f}x | {r.target} |"
        )
    return "\n".join(lines)
