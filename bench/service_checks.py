"""Run-time checks on 70 listening units in the sandbox: concurrent health probes against the
same probes one after another, and process/port discovery against the operator's shell loop.

Half of the 70 units hang on /health (the worst case for a prober). Both sides run inside the
same booted box, interleaved by one script there.
"""

from __future__ import annotations

import json
import sys
import time

from bench.harness import Comparison
from qtctl.sandbox import BoxFile, Sandbox, SandboxSpec

UNITS = 70
TIMEOUT = 0.5
SHELL_LOOP = r"""
units=$(systemctl list-units --plain --no-legend --state=active 'quantum-*' | awk '{print $1}')
for u in $units; do
    systemctl show -P MainPID "$u" > /dev/null
done
ss -Htlnp > /dev/null
"""
IN_BOX = r"""
import json, subprocess, sys, time
from qtctl.config import load_config
from qtctl.diagnosis.health_probe import probe_all, probe_port
from qtctl.diagnosis.unit_processes import discover
from qtctl.engine.context import CheckContext
timeout, rounds = float(sys.argv[1]), int(sys.argv[2])
cfg = load_config(None, env={})
paths = cfg.services.health_paths

def discovery():
    ctx = CheckContext(cfg)
    try:
        return discover(ctx)
    finally:
        ctx.close()

found = discovery()
targets = [(l.probe_host, l.port) for l in found.listeners]
out = {"listeners": len(targets), "units": len(found.units), "probe": [], "serial": [],
       "disc": [], "shell": []}
for _ in range(rounds):
    t = time.perf_counter(); probe_all(targets, paths, timeout, 4096)
    out["probe"].append(time.perf_counter() - t)
    t = time.perf_counter()
    for host, port in targets:
        probe_port(host, port, paths, timeout, 4096)
    out["serial"].append(time.perf_counter() - t)
    t = time.perf_counter(); discovery(); out["disc"].append(time.perf_counter() - t)
    t = time.perf_counter(); subprocess.run(["bash", "-c", sys.argv[3]], check=True)
    out["shell"].append(time.perf_counter() - t)
print(json.dumps(out))
"""


def spec() -> SandboxSpec:
    """70 units: even ones answer /health, odd ones hang."""
    sys.path.insert(0, ".")
    from tests.support.runtime_fleet import PY, SERVICE_SCRIPT, SVC

    units = {
        f"quantum-svc{i:02d}.service": "[Service]\n"
        f"ExecStart={PY} {SVC} {'hang' if i % 2 else 'ok'} 127.0.0.1 {8100 + i}\n"
        for i in range(UNITS)
    }
    return SandboxSpec(units=units, files={SVC: BoxFile(SERVICE_SCRIPT)}, wants=list(units))


def run(rounds: int = 15) -> list[Comparison]:
    """Concurrent probing and discovery, each against its baseline."""
    rounds = max(3, rounds // 3)  # the serial baseline costs 35 timeouts a round
    with Sandbox(spec()) as box:
        _wait_listening(box)
        res = box.run(
            sys.executable, "-c", IN_BOX, str(TIMEOUT), str(rounds), SHELL_LOOP, timeout=900
        )
        if res.returncode:
            raise RuntimeError(res.stderr)
        out = json.loads(res.stdout)
    n = out["listeners"]
    return [
        Comparison(
            name=f"health probes, {n} ports ({n // 2} hanging), timeout {TIMEOUT:g} s",
            candidate="qtctl QT701 probes, all ports at once",
            baseline="the same probes one port after another",
            target=f"<= timeout + 0.2 s = {TIMEOUT + 0.2:g} s",
            candidate_times=tuple(out["probe"]),
            baseline_times=tuple(out["serial"]),
        ),
        Comparison(
            name=f"process and port discovery, {out['units']} units",
            candidate="qtctl (ListUnits + /proc cgroups + one socket table)",
            baseline="shell: systemctl show -P MainPID per unit + ss -tlnp",
            target="< 200 ms",
            candidate_times=tuple(out["disc"]),
            baseline_times=tuple(out["shell"]),
        ),
    ]


def _wait_listening(box: Sandbox, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if len(box.run("ss", "-Htln").stdout.splitlines()) >= UNITS:
            return
        time.sleep(0.2)
    raise RuntimeError("the bench units did not all listen in time")
