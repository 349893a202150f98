"""Unit checks (QT101-QT103, journal included) against the operator's shell loop, in the sandbox.

Both run inside the same booted box, interleaved by one script there: qtctl's checks in-process
(D-Bus + sd-journal), and `systemctl list-units` + `systemctl show` + `journalctl -u` per unit.
"""

from __future__ import annotations

import json
import sys
import time

from bench.harness import Comparison
from qtctl.sandbox import Sandbox, SandboxSpec

SHELL_LOOP = r"""
for u in $(systemctl list-units --all --plain --no-legend 'quantum-*' | awk '{print $1}'); do
    systemctl show "$u" > /dev/null
    journalctl -u "$u" -n 50 --no-pager > /dev/null
done
"""
IN_BOX = r"""
import json, subprocess, sys, time
from qtctl.config import load_config
from qtctl.doctor import run_doctor
cfg = load_config(None, env={"QTCTL__DOCTOR__SELECT": "QT101,QT102,QT103"})
rounds = int(sys.argv[1])
run_doctor(cfg)
cand, base, units = [], [], 0
for _ in range(rounds):
    t = time.perf_counter(); report = run_doctor(cfg); cand.append(time.perf_counter() - t)
    t = time.perf_counter()
    subprocess.run(["bash", "-c", sys.argv[2]], check=True)
    base.append(time.perf_counter() - t)
print(json.dumps({"cand": cand, "base": base, "findings": len(report.findings)}))
"""
BOOT_BASELINE = ["unshare", "--pid", "--fork", "--mount", "--net", "--mount-proc", "true"]


def fleet() -> SandboxSpec:
    """The broken ~75-unit test fleet."""
    sys.path.insert(0, ".")
    from tests.support.fleet import fleet_spec

    return fleet_spec()


def run(rounds: int = 15) -> list[Comparison]:
    """Check time and sandbox boot time."""
    with Sandbox(fleet()) as box:
        time.sleep(4)
        box.run("journalctl", "--sync")
        units = box.systemctl("list-units", "--all", "--plain", "--no-legend", "quantum-*")
        count = len(units.stdout.splitlines())
        res = box.run(sys.executable, "-c", IN_BOX, str(rounds), SHELL_LOOP, timeout=600)
        times = json.loads(res.stdout)
    return [
        Comparison(
            name=f"unit checks, {count} units, journal included",
            candidate="qtctl QT101-QT103 (D-Bus + sd-journal)",
            baseline="shell loop: list-units + show + journalctl -u per unit",
            target="<= 300 ms and >= 10x faster",
            candidate_times=tuple(times["cand"]),
            baseline_times=tuple(times["base"]),
        ),
        _boot(rounds=max(3, rounds // 3)),
    ]


def _boot(rounds: int) -> Comparison:
    import subprocess

    from bench.harness import interleave

    def boot() -> None:
        with Sandbox(SandboxSpec()):
            pass

    def bare() -> None:
        subprocess.run(BOOT_BASELINE, check=True)

    cand, base = interleave(boot, bare, rounds, warmup=1)
    return Comparison(
        name="systemd sandbox boot + teardown",
        candidate="Sandbox(SandboxSpec()) boot to running",
        baseline="bare unshare of the same namespaces",
        target="well under 2 s",
        candidate_times=cand,
        baseline_times=base,
    )
