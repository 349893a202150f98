"""Where doctor's time goes on the messy fleet, and this tree against another revision there.

`python -m bench.doctor_profile` boots the messy ~150-unit fleet (as `bench/messy_fleet.py`
does) and runs every check once under cProfile inside the box, in the main thread (the runner's
per-check threads hide from cProfile), printing per-check seconds and the top functions.
`python -m bench.doctor_profile --against REVISION` instead checks REVISION out in a temporary
git worktree and, in the same booted box, alternates `qtctl doctor --format json` child processes
of this tree and of that one: the ratio is this tree / REVISION. Target: messy doctor < 5 s.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bench.harness import Comparison, table
from qtctl.sandbox import Sandbox, SandboxSpec

HERE = Path(__file__).resolve().parents[1]
PROFILE = r"""
import cProfile, io, json, pstats, sys, time
from qtctl.checks import REGISTRY
from qtctl.config import load_config
from qtctl.engine.context import CheckContext
ctx = CheckContext(load_config(None))
times, prof = {}, cProfile.Profile()
for check in REGISTRY:
    started = time.perf_counter()
    prof.enable()
    try:
        list(check.run(ctx))
    except Exception:  # a skipped or crashed check still took its time
        pass
    prof.disable()
    times[check.name] = round(time.perf_counter() - started, 3)
ctx.close()
print(json.dumps(times))
out = io.StringIO()
stats = pstats.Stats(prof, stream=out).sort_stats(sys.argv[1])
stats.print_stats(int(sys.argv[2]))
print(out.getvalue())
"""
# Each check's seconds in the tree at argv[1] (one context, main thread, as doctor runs them).
PER_CHECK = r"""
import json, sys, time
root = sys.argv[1]
if root != sys.argv[2]:
    sys.meta_path[:] = [f for f in sys.meta_path if "ditable" not in type(f).__name__]
sys.path.insert(0, root)
from qtctl.checks import REGISTRY
from qtctl.config import load_config
from qtctl.engine.context import CheckContext
import qtctl.checks
assert qtctl.checks.__file__.startswith(root), qtctl.checks.__file__
ctx, times = CheckContext(load_config(None)), {}
for check in REGISTRY:
    started = time.perf_counter()
    try:
        list(check.run(ctx))
    except Exception:  # a skipped or crashed check still took its time
        pass
    times[check.name] = time.perf_counter() - started
print(json.dumps(times))
"""
# One doctor run of the tree at argv[1] (the other revision: not the editable install's packages).
CHILD = r"""
import runpy, sys, time
root = sys.argv[1]
if root != sys.argv[2]:
    sys.meta_path[:] = [f for f in sys.meta_path if "ditable" not in type(f).__name__]
sys.path.insert(0, root)
sys.argv = ["qtctl", "--format", "json", "doctor"]
started = time.perf_counter()
try:
    runpy.run_module("qtctl", run_name="__main__")
except SystemExit as exc:
    assert exc.code in (0, 1, None), exc.code
import qtctl
assert qtctl.__file__.startswith(root), qtctl.__file__
print(f"\nSECONDS {time.perf_counter() - started:.4f}", file=sys.stderr)
"""


@contextmanager
def messy_box(binds: list[str]) -> Iterator[Sandbox]:
    """The messy fleet booted and settled, Redis up after the feeds died (as the tests do)."""
    sys.path.insert(0, str(HERE))
    from tests.support.messy_faults import start_redis
    from tests.support.messy_fleet import build
    from tests.test_messy_fleet import settle

    spec = build().spec()
    spec = SandboxSpec(
        units=spec.units,
        files=spec.files,
        symlinks=spec.symlinks,
        wants=spec.wants,
        binds=[*spec.binds, *binds],
    )
    with Sandbox(spec).boot(timeout=120) as box:
        settle(box)
        start_redis(box)
        yield box


def profile(sort: str, top: int) -> None:
    """Per-check seconds and cProfile's top functions, one pass over every check."""
    with messy_box([]) as box:
        res = box.run(sys.executable, "-c", PROFILE, sort, str(top), timeout=600)
    if res.returncode:
        raise RuntimeError(res.stderr[-2000:])
    times, _, stats = res.stdout.partition("\n")
    ranked = sorted(json.loads(times).items(), key=lambda item: -item[1])
    print("per check: " + ", ".join(f"{n} {t:.2f} s" for n, t in ranked))
    print(f"load average: {os.getloadavg()}")
    print(stats)


def against(revision: str, alternations: int) -> Comparison:
    """This tree's doctor against `revision`'s, in the same box, alternating child processes."""
    with tempfile.TemporaryDirectory(prefix="qtctl-bench-", dir="/tmp") as tmp:
        other = Path(tmp) / "tree"
        git = ["git", "-C", str(HERE), "worktree"]
        subprocess.run([*git, "add", "--detach", str(other), revision], check=True)
        try:
            for package in ("checks", "daemons"):  # installed as qtctl.checks / qtctl.daemons
                os.symlink(f"../{package}", other / "qtctl" / package)
            with messy_box([str(other)]) as box:
                times = _alternate(box, other, alternations)
                _per_check(box, other)
        finally:
            subprocess.run([*git, "remove", "--force", str(other)], check=True)
    return Comparison(
        name="doctor --format json, messy fleet (every check)",
        candidate="this tree",
        baseline=f"revision {revision}",
        target="this tree < 5 s",
        candidate_times=tuple(times["here"]),
        baseline_times=tuple(times["other"]),
    )


def _alternate(box: Sandbox, other: Path, alternations: int) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {"here": [], "other": []}
    for round_ in range(alternations + 1):  # the first round warms the page cache
        for name, root in (("here", HERE), ("other", other)):
            res = box.run(sys.executable, "-c", CHILD, str(root), str(HERE), timeout=600)
            seconds = [ln for ln in res.stderr.splitlines() if ln.startswith("SECONDS ")]
            if res.returncode or not seconds:
                raise RuntimeError(res.stderr[-2000:])
            if round_:
                times[name].append(float(seconds[-1].split()[1]))
        print(f"round {round_}: {times} load {os.getloadavg()}", file=sys.stderr)
    return times


def _per_check(box: Sandbox, other: Path) -> None:
    """Each tree's checks, alternately, three times: the checks that got cheaper (or dearer)."""
    for _ in range(3):
        for name, root in (("this tree", HERE), ("other", other)):
            res = box.run(sys.executable, "-c", PER_CHECK, str(root), str(HERE), timeout=600)
            if res.returncode:
                raise RuntimeError(res.stderr[-2000:])
            times = json.loads(res.stdout)
            top = sorted(times.items(), key=lambda item: -item[1])[:7]
            shown = ", ".join(f"{n} {t:.2f}" for n, t in top)
            total = sum(times.values())
            print(f"{name}: checks {total:.2f} s ({shown}) load {os.getloadavg()[0]:.1f}")


def main() -> None:
    """`python -m bench.doctor_profile [--against REVISION]`."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--against", metavar="REVISION")
    parser.add_argument("--alternations", type=int, default=5)
    parser.add_argument("--sort", default="cumulative")
    parser.add_argument("--top", type=int, default=60)
    args = parser.parse_args()
    if args.against:
        print(table([against(args.against, args.alternations)]))
        print(f"load average: {os.getloadavg()}")
    else:
        profile(args.sort, args.top)


if __name__ == "__main__":
    main()
