"""The env-file and unit-file readers on the large inputs of issue 24, against the code replaced.

The baseline is the parsers as they were before the rewrite (commit BASELINE), loaded from git as
modules of their own: the char-by-char env-file state machine, its re-parsing misread helpers,
and the unit parser that rebuilt its continuation string on every line. Inputs: a 50 MB env file
that is one line, and a unit with one ExecStart= continued over 200,000 lines.
"""

from __future__ import annotations

import subprocess
import sys
import types
from collections.abc import Callable
from pathlib import Path

from bench.harness import Comparison, interleave
from qtctl.diagnosis import env_file, unit_file

BASELINE = "cbed77d"  # the last commit with the old readers
REPO = Path(__file__).resolve().parents[1]
ENV_BYTES = 50_000_000
CONTINUED = 200_000


def baseline(module: str) -> types.ModuleType:
    """The module's source at BASELINE, executed as a fresh module."""
    source = subprocess.run(
        ["git", "show", f"{BASELINE}:qtctl/diagnosis/{module}.py"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    old = types.ModuleType(f"bench_baseline_{module}")
    sys.modules[old.__name__] = old  # dataclasses look their module up there
    exec(compile(source, f"{BASELINE}:{module}.py", "exec"), old.__dict__)
    return old


def env_text() -> str:
    """One assignment of 50 MB: a token-like value with a space now and then."""
    chunk = "A1b2C3d4E5f6G7h8I9j0" * 4 + " "
    return "PAYLOAD=" + chunk * (ENV_BYTES // len(chunk)) + "\n"


def unit_text() -> str:
    """ExecStart= continued over 200,000 lines (under systemd's 1 MiB for a logical line)."""
    return "[Service]\nExecStart=/bin/echo \\\n" + "a \\\n" * CONTINUED + "z\n"


def _fresh(fn: Callable[[str], object]) -> Callable[[str], object]:
    """The candidate's parse cache is cleared first: every round parses."""

    def run(text: str) -> object:
        env_file._parsed.cache_clear()
        return fn(text)

    return run


def run(rounds: int = 15) -> list[Comparison]:
    """Three rows: environment() and intended() on the 50 MB file, parse on the long unit."""
    rounds = max(1, min(rounds, 3))  # the baseline takes tens of seconds a round
    old_env, old_unit = baseline("env_file"), baseline("unit_file")
    env, unit = env_text(), unit_text()
    cases = (
        ("env file 50 MB, one line: environment()", "environment", env),
        ("env file 50 MB, one line: intended()", "intended", env),
    )
    rows = []
    for name, function, text in cases:
        new, old = _fresh(getattr(env_file, function)), getattr(old_env, function)
        cand, base = interleave(lambda: new(text), lambda: old(text), rounds, warmup=0)  # noqa: B023
        rows.append(_row(name, f"env_file.{function}", cand, base))
    cand, base = interleave(
        lambda: unit_file.parse_text(unit, "/etc/systemd/system/x.service"),
        lambda: old_unit.parse_text(unit, "/etc/systemd/system/x.service"),
        rounds,
        warmup=0,
    )
    rows.append(_row(f"unit, {CONTINUED:,} continuation lines", "unit_file.parse_text", cand, base))
    return rows


def _row(name: str, what: str, cand: tuple[float, ...], base: tuple[float, ...]) -> Comparison:
    return Comparison(
        name=name,
        candidate=f"{what} (read_line port, regex runs)",
        baseline=f"{what} at {BASELINE}",
        target="< 1 s",
        candidate_times=cand,
        baseline_times=base,
    )
