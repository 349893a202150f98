"""QT101 on a unit that failed 6,568 times against one that failed 5 times, in the sandbox.

The journal reads of a failing unit are capped (its newest MAX_RUNS_SCANNED failure lines, the
lines of its newest RUNS_READ runs), so the cost must not grow with its history: target ratio
<= 1.5x. Both units end failed the same way; doctor runs in-process in the box, interleaved.
"""

from __future__ import annotations

import json
import sys
import time

from bench.harness import Comparison
from qtctl.sandbox import Sandbox, SandboxSpec

MANY, FEW = 6568, 5
LOOP = (
    "[Unit]\nStartLimitIntervalSec=0\n[Service]\n"
    "ExecStart=/bin/sh -c 'test -e /run/stop-{name} && exit 2; echo failing; exit 1'\n"
    "Restart=on-failure\nRestartSec=0\nRestartPreventExitStatus=2\n"
)
IN_BOX = r"""
import json, sys, time
from qtctl.config import load_config
from qtctl.doctor import run_doctor
def doctor(unit):
    cfg = load_config(None, env={"QTCTL__DOCTOR__SELECT": "QT101", "QTCTL__FLEET__UNITS": unit})
    t = time.perf_counter(); report = run_doctor(cfg); return time.perf_counter() - t, report
rounds = int(sys.argv[1])
many, few = [], []
for _ in range(rounds + 2):
    many.append(doctor("quantum-many.service")[0]); few.append(doctor("quantum-few.service")[0])
print(json.dumps({"many": many[2:], "few": few[2:],
                  "message": [f.message for f in doctor("quantum-many.service")[1].findings]}))
"""


def _wait_restarts(box: Sandbox, unit: str, count: int) -> None:
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        shown = box.systemctl("show", "-P", "NRestarts", unit).stdout.strip()
        if int(shown or 0) >= count:
            return
        time.sleep(0.5)
    raise RuntimeError(f"{unit} did not reach {count} restarts")


def run(rounds: int = 15) -> list[Comparison]:
    """QT101's time on a long failure history against a short one."""
    units = {f"quantum-{n}.service": LOOP.format(name=n) for n in ("many", "few")}
    with Sandbox(SandboxSpec(units=units, wants=sorted(units))) as box:
        for name, count in (("many", MANY - 1), ("few", FEW - 1)):
            _wait_restarts(box, f"quantum-{name}.service", count)
            box.write(f"/run/stop-{name}", "")
            box.wait_for(f"quantum-{name}.service", ["failed"], timeout=60)
        box.run("journalctl", "--sync")
        res = box.run(sys.executable, "-c", IN_BOX, str(rounds), timeout=600)
        times = json.loads(res.stdout)
    print(times["message"], file=sys.stderr)
    return [
        Comparison(
            name="QT101 on a unit with a long failure history (journal reads capped)",
            candidate=f"{MANY:,} failed runs",
            baseline=f"{FEW} failed runs",
            target="<= 1.5x",
            candidate_times=tuple(times["many"]),
            baseline_times=tuple(times["few"]),
        )
    ]
