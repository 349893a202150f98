"""Doctor on the messy ~150-unit fleet against doctor on the tidy ~75-unit fleet, in the sandbox.

Two boxes booted side by side from the same qtctl; each round runs `qtctl doctor --format json`
in one box, then in the other, as an operator would (a fresh process, every check). Target: the
messy fleet's doctor under 5 s.
"""

from __future__ import annotations

import sys
import time

from bench.harness import Comparison, interleave
from qtctl.sandbox import Sandbox, SandboxSpec
from tests.support.fleet import fleet_spec
from tests.support.messy_fleet import build, start_redis
from tests.test_messy_fleet import settle

TARGET_SEC = 5.0


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
