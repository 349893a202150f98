"""`qtctl report` as cron runs it, for the ~75-unit test fleet and 100 streams, in the sandbox.

Candidate: the whole `qtctl report --format prometheus --output FILE` command (interpreter start,
every check, rendering, atomic write). Baseline: `qtctl doctor --format json` on the same box:
the same checks without the report's inventory, rendering and write.
"""

from __future__ import annotations

import json
import sys
import time

from bench.harness import Comparison
from qtctl.sandbox import Sandbox

IN_BOX = r"""
import json, subprocess, sys, time
import redis
subprocess.run(["redis-server", "--port", "6379", "--bind", "127.0.0.1", "--save", "",
                "--appendonly", "no", "--daemonize", "yes"], check=True)
for _ in range(100):
    try:
        client = redis.Redis(decode_responses=True); client.ping(); break
    except redis.ConnectionError:
        time.sleep(0.05)
pipe = client.pipeline(transaction=False)
for i in range(100):
    for j in range(100):
        pipe.xadd(f"quantum:stream:bench.{i:03d}", {"j": j})
    if i % 2:
        pipe.xgroup_create(f"quantum:stream:bench.{i:03d}", "quantum:group:bench", id="0")
pipe.execute()
rounds = int(sys.argv[1])
report = [sys.executable, "-m", "qtctl", "report", "-f", "prometheus", "-o", "/tmp/qtctl.prom"]
doctor = [sys.executable, "-m", "qtctl", "doctor", "--format", "json"]
def timed(argv):
    t = time.perf_counter()
    subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t
timed(report); timed(doctor)
cand, base = [], []
for _ in range(rounds):
    cand.append(timed(report)); base.append(timed(doctor))
lines = open("/tmp/qtctl.prom").read().splitlines()
units = sum(1 for line in lines if line.startswith("qtctl_unit_active{"))
streams = sum(1 for line in lines if line.startswith("qtctl_stream_length{"))
print(json.dumps({"cand": cand, "base": base, "units": units, "streams": streams}))
"""


def run(rounds: int = 15) -> list[Comparison]:
    """Median wall time of the report command against doctor's, both as cron would run them."""
    sys.path.insert(0, ".")
    from tests.support.fleet import fleet_spec

    with Sandbox(fleet_spec()) as box:
        time.sleep(4)
        res = box.run(sys.executable, "-c", IN_BOX, str(max(3, rounds // 2)), timeout=600)
        if res.returncode:
            raise RuntimeError(res.stderr)
        times = json.loads(res.stdout)
    return [
        Comparison(
            name=f"health report, {times['units']} units, {times['streams']} streams",
            candidate="qtctl report -f prometheus -o FILE (whole command)",
            baseline="qtctl doctor --format json (whole command)",
            target="< 1 s",
            candidate_times=tuple(times["cand"]),
            baseline_times=tuple(times["base"]),
        )
    ]
