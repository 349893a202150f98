"""Doctor on the messy ~150-unit fleet against doctor on the tidy ~75-unit fleet, in the sandbox.

Two boxes booted side by side from the same qtctl; each round runs `qtctl doctor --format json`
in one box, then in the other, as an operator would (a fresh process, every check). Target: the
messy fleet's doctor under 5 s.
"""

from __future__ import annotations

import json
import sys
import time

from bench.harness import Comparison, interleave
from qtctl.sandbox import Sandbox, SandboxSpec
from tests.support.fleet import fleet_spec
from tests.support.messy_faults import start_redis
from tests.support.messy_fleet import build
from tests.test_messy_fleet import settle

TARGET_SEC = 5.0
# Each check on its own, in the order doctor runs them (sharing one context, as doctor does).
PER_CHECK = r"""
import json, time
from qtctl.checks import REGISTRY
from qtctl.config import load_config
from qtctl.engine.context import CheckContext
ctx = CheckContext(load_config(None))
times = {}
for check in REGISTRY:
    started = time.perf_counter()
    try:
        list(check.run(ctx))
    except Exception:  # a skipped or crashed check still took its time
        pass
    times[check.name] = round(time.perf_counter() - started, 3)
ctx.close()
print(json.dumps(times))
"""


def _fleets() -> tuple[SandboxSpec, SandboxSpec, int, int]:
    messy = build()
    tidy = fleet_spec()
    return messy.spec(), tidy, len(messy.units), len(tidy.units)


def _doctor(box: Sandbox) -> None:
    res = box.qtctl("--format", "json", "doctor", timeout=300)
    if res.returncode not in (0, 1):
        raise RuntimeError(f"doctor exited {res.returncode}: {res.stderr.strip()[-500:]}")


def run(rounds: int = 15) -> list[Comparison]:
    """Median doctor time on each fleet, interleaved; the ratio is messy / tidy."""
    messy_spec, tidy_spec, messy_units, tidy_units = _fleets()
    with Sandbox(messy_spec).boot(timeout=120) as messy, Sandbox(tidy_spec) as tidy:
        settle(messy)
        start_redis(messy)
        time.sleep(4)  # the tidy fleet's planted failures too (RestartSec= 100 ms-2 s)
        cand, base = interleave(lambda: _doctor(messy), lambda: _doctor(tidy), rounds, warmup=1)
        _print_slowest(messy)
    row = Comparison(
        name=f"doctor, messy fleet ({messy_units} units) vs tidy fleet ({tidy_units} units)",
        candidate="qtctl doctor --format json on the messy fleet",
        baseline="the same on the tidy test fleet",
        target=f"messy median < {TARGET_SEC:.0f} s",
        candidate_times=cand,
        baseline_times=base,
    )
    print(
        f"messy {row.candidate_median:.2f} s, tidy {row.baseline_median:.2f} s, "
        f"ratio {row.ratio:.2f}x, target met: {row.candidate_median < TARGET_SEC}",
        file=sys.stderr,
    )
    return [row]


def _print_slowest(box: Sandbox) -> None:
    """Where the messy fleet's doctor spends its time: the five slowest checks."""
    res = box.run(sys.executable, "-c", PER_CHECK, timeout=300)
    if res.returncode != 0:
        print(f"per-check timing failed: {res.stderr.strip()[-300:]}", file=sys.stderr)
        return
    times = sorted(json.loads(res.stdout).items(), key=lambda item: -item[1])
    print("slowest checks: " + ", ".join(f"{n} {t:.2f} s" for n, t in times[:5]), file=sys.stderr)
