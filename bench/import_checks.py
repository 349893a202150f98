"""Import resolution (QT201-QT204) for every Python service of the ~75-unit test fleet, against
the cheapest dynamic alternative: starting each service's interpreter once (`python -c pass`)."""

from __future__ import annotations

import json
import sys
import time

from bench.harness import Comparison
from bench.unit_checks import fleet
from qtctl.sandbox import Sandbox

IN_BOX = r"""
import json, subprocess, sys, time
from qtctl.config import load_config
from qtctl.doctor import run_doctor
from qtctl.diagnosis.python_units import python_services
cfg = load_config(None, env={"QTCTL__DOCTOR__SELECT": "QT201,QT203,QT204"})
services = python_services(cfg.fleet.units)
rounds = int(sys.argv[1])
cand, base = [], []
for _ in range(rounds):
    t = time.perf_counter(); run_doctor(cfg); cand.append(time.perf_counter() - t)
    t = time.perf_counter()
    for s in services:
        subprocess.run([s.interpreter, "-c", "pass"], check=True)
    base.append(time.perf_counter() - t)
print(json.dumps({"cand": cand, "base": base, "services": len(services)}))
"""


def run(rounds: int = 9) -> list[Comparison]:
    """Cold first round included: the interpreter probe and directory caches are per process."""
    with Sandbox(fleet()) as box:
        time.sleep(2)
        res = box.run(sys.executable, "-c", IN_BOX, str(rounds), timeout=600)
        times = json.loads(res.stdout)
    cold = Comparison(
        name=f"import resolution, {times['services']} Python services (first run)",
        candidate="qtctl QT201-QT204 (static, no service code run)",
        baseline="start each service's interpreter once",
        target="<= 1 s in total",
        candidate_times=tuple(times["cand"][:1]),
        baseline_times=tuple(times["base"][:1]),
    )
    warm = Comparison(
        name=f"import resolution, {times['services']} Python services (median)",
        candidate="qtctl QT201-QT204 (static, no service code run)",
        baseline="start each service's interpreter once",
        target="<= 1 s in total",
        candidate_times=tuple(times["cand"]),
        baseline_times=tuple(times["base"]),
    )
    return [cold, warm]
