"""Doctor's unit checks (QT101-QT103) against another revision's, side by side in one box.

`python -m bench.unit_causes REVISION` checks REVISION out in a temporary git worktree and, in
one booted copy of the ~79-unit test fleet, alternates child processes of this tree and of that
one, three doctor runs each. Target: the causes of issues 21/22 (invocation-scoped evidence,
setup steps, dependencies) cost at most 1.5x the revision before them (ce7be2a^).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.harness import Comparison, table
from qtctl.sandbox import Sandbox, SandboxSpec

CHILD = r"""
import json, sys, time
root = sys.argv[1]
if root != sys.argv[2]:  # the other revision: not the editable install's packages
    sys.meta_path[:] = [f for f in sys.meta_path if "ditable" not in type(f).__name__]
sys.path.insert(0, root)
import qtctl
assert qtctl.__file__.startswith(root), qtctl.__file__
from qtctl.config import load_config
from qtctl.doctor import run_doctor
cfg = load_config(None, env={"QTCTL__DOCTOR__SELECT": "QT101,QT102,QT103"})
run_doctor(cfg)
times = []
for _ in range(3):
    t = time.perf_counter(); run_doctor(cfg); times.append(time.perf_counter() - t)
print(json.dumps(times))
"""


def against(revision: str, alternations: int = 6) -> Comparison:
    """This tree's unit checks against `revision`'s, in the same box, alternating."""
    here = Path(__file__).resolve().parents[1]
    with tempfile.TemporaryDirectory(prefix="qtctl-bench-", dir="/tmp") as tmp:
        other = Path(tmp) / "tree"
        git = ["git", "-C", str(here), "worktree"]
        subprocess.run([*git, "add", "--detach", str(other), revision], check=True)
        try:
            for package in ("checks", "daemons"):  # installed as qtctl.checks / qtctl.daemons
                os.symlink(f"../{package}", other / "qtctl" / package)
            return _measure(here, other, revision, alternations)
        finally:
            subprocess.run([*git, "remove", "--force", str(other)], check=True)


def _measure(here: Path, other: Path, revision: str, alternations: int) -> Comparison:
    sys.path.insert(0, str(here))
    from tests.support.fleet import fleet_spec

    spec = fleet_spec()
    spec = SandboxSpec(
        units=spec.units,
        files=spec.files,
        symlinks=spec.symlinks,
        wants=spec.wants,
        binds=[str(other)],
    )
    times: dict[str, list[float]] = {"here": [], "other": []}
    with Sandbox(spec) as box:
        time.sleep(5)  # the planted faults happen, the loops loop
        box.run("journalctl", "--sync")
        for _ in range(alternations):
            for name, root in (("here", here), ("other", other)):
                res = box.run(sys.executable, "-c", CHILD, str(root), str(here), timeout=300)
                if res.returncode:
                    raise RuntimeError(res.stderr[-2000:])
                times[name] += json.loads(res.stdout)
    return Comparison(
        name="doctor QT101-QT103, 79-unit fleet, journal included",
        candidate="this tree",
        baseline=f"revision {revision}",
        target="<= 1.5x",
        candidate_times=tuple(times["here"]),
        baseline_times=tuple(times["other"]),
    )


def main() -> None:
    """`python -m bench.unit_causes REVISION`: print the table row."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("revision")
    parser.add_argument("--alternations", type=int, default=6)
    args = parser.parse_args()
    print(table([against(args.revision, args.alternations)]))


if __name__ == "__main__":
    main()
