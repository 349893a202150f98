"""Doctor with incidents against doctor without, on the ~75-unit fleet in the sandbox.

One script inside the booted box interleaves both, in-process: the baseline builds the findings
and prints them flat, one block each (the table before issue 21); the candidate builds the same
findings, links them into incidents, rolls them up and prints the incident table and the JSON
document. Target: the candidate within 1.5x of the baseline."""

from __future__ import annotations

import json
import sys
import time

from bench.harness import Comparison
from qtctl.sandbox import Sandbox

IN_BOX = r"""
import contextlib, io, json, sys, time
from qtctl.config import load_config
from qtctl.doctor import run_doctor
from qtctl.engine.report import report_document
from qtctl.output import Output, finding_block

cfg = load_config(None, env={})
rounds = int(sys.argv[1])


def flat():
    report = run_doctor(cfg)
    out = Output(format="table", color=False, width=200)
    with contextlib.redirect_stdout(io.StringIO()):
        for finding in report.findings:
            out.markup(finding_block(finding, 0))
    return report


def incidents():
    report = run_doctor(cfg)
    out = Output(format="table", color=False, width=200)
    with contextlib.redirect_stdout(io.StringIO()):
        out.report(report)
    json.dumps(report_document(report))
    return report


flat(); incidents()
cand, base, analysis = [], [], []
for _ in range(rounds):
    t = time.perf_counter(); report = incidents(); cand.append(time.perf_counter() - t)
    t = time.perf_counter(); flat(); base.append(time.perf_counter() - t)
    t = time.perf_counter(); found = list(report.__class__(report.findings).incidents)
    analysis.append(time.perf_counter() - t)
print(json.dumps({"cand": cand, "base": base, "analysis": analysis,
                  "findings": len(report.findings), "incidents": len(found)}))
"""


def run(rounds: int = 15) -> list[Comparison]:
    """Doctor + incidents + roll-up + table against doctor + the flat table."""
    sys.path.insert(0, ".")
    from tests.support.fleet import fleet_spec

    with Sandbox(fleet_spec()) as box:
        time.sleep(4)
        box.run("journalctl", "--sync")
        res = box.run(sys.executable, "-c", IN_BOX, str(rounds), timeout=900)
        if res.returncode:
            raise RuntimeError(res.stderr[-2000:])
        times = json.loads(res.stdout)
    counts = f"{times['findings']} findings, {times['incidents']} incidents"
    analysis_ms = 1000 * sorted(times["analysis"])[len(times["analysis"]) // 2]
    return [
        Comparison(
            name=f"doctor with incidents, ~75-unit fleet ({counts}; linking alone "
            f"{analysis_ms:.2f} ms)",
            candidate="findings + incidents + roll-up + incident table + JSON",
            baseline="findings + flat table",
            target="ratio <= 1.5",
            candidate_times=tuple(times["cand"]),
            baseline_times=tuple(times["base"]),
        )
    ]
