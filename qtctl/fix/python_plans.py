"""Repairs of Python services' imports (QT201): a PYTHONPATH drop-in proven by re-resolving
every import with it, else a proven source patch (needs --unsafe)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from qtctl.config import Config
from qtctl.diagnosis.fleet import FleetUnit
from qtctl.diagnosis.imports import analyse, candidates
from qtctl.diagnosis.python_units import PythonService, python_services
from qtctl.engine.facts import UnitFacts
from qtctl.engine.findings import Finding
from qtctl.fix.actions import DaemonReload, PatchSource, WriteDropIn
from qtctl.fix.policy import never_change
from qtctl.fix.repair import Planning, Repair
from qtctl.fix.source_patch import propose

PYTHON_DROP_IN = "qtctl-python.conf"


def plan_pythonpath(finding: Finding, facts: UnitFacts, planning: Planning) -> Repair:
    """QT201: the minimal PYTHONPATH drop-in, proven by re-resolving every import with it; for
    a protected unit, shown and held."""
    repair = _plan_pythonpath(finding, facts, planning)
    protected = never_change(facts.unit, planning.units, planning.ctx.config)
    return dataclasses.replace(repair, held=protected) if protected else repair


def _plan_pythonpath(finding: Finding, facts: UnitFacts, planning: Planning) -> Repair:
    config = planning.ctx.config
    service = _python_service(facts.unit, config.fleet.units)
    if service is None:
        return Repair(finding, held="not a Python service unit any more")
    roots = list(config.fleet.code_roots)
    failing = [p for p in analyse(service, roots).problems if p.code == "QT201"]
    if not failing:
        return Repair(finding, held="its imports resolve now")
    if any(not p.module for p in failing):
        return Repair(finding, held=f"not an import-path problem: {failing[0].cause}")
    needed = []
    for problem in failing:
        homes = candidates(problem.module, roots, service)
        if not homes:
            return Repair(finding, held=f"no directory in the code roots provides {problem.module}")
        needed.append(homes[0])
    if "PYTHONPATH" in service.env_files:
        source = service.env_files["PYTHONPATH"]
        return Repair(
            finding,
            held=f"PYTHONPATH comes from EnvironmentFile {source}, which "
            f"overrides Environment=: add {':'.join(needed)} there",
        )
    current = [p for p in service.env.get("PYTHONPATH", "").split(":") if p]
    pythonpath = ":".join(dict.fromkeys([*current, *needed]))
    proof = analyse(service, roots, {**service.env, "PYTHONPATH": pythonpath})
    still = [p for p in proof.problems if p.code == "QT201"]
    if still:
        why = (
            f"an environment fix cannot help (PYTHONPATH={pythonpath} still leaves: "
            f"{still[0].cause})"
        )
        return _source_patch(finding, planning, service, roots, why)
    path = f"/etc/systemd/system/{service.unit}.d/{PYTHON_DROP_IN}"
    content = f'[Service]\nEnvironment="PYTHONPATH={pythonpath}"\n'
    return Repair(finding, (WriteDropIn(path, content), DaemonReload()))


def imports_still_fail(unit: FleetUnit, config: Config) -> str:
    """Why an import-error is still there (the static resolution of the unit's imports still
    fails), or '' once it succeeds."""
    service = _python_service(unit.name, [unit.name])
    if service is None:
        return ""
    roots = list(config.fleet.code_roots)
    failing = [p for p in analyse(service, roots).problems if p.code == "QT201"]
    if failing:
        return f"root cause first: {failing[0].module or 'start-up'}: {failing[0].cause}"
    return ""


def _source_patch(
    finding: Finding, planning: Planning, service: PythonService, roots: list[str], why: str
) -> Repair:
    patch = propose(service, roots)
    if patch is None:
        return Repair(finding, held=f"{why}; no safe source patch found: fix the code by hand")
    held = (
        ""
        if planning.options.unsafe
        else (f"{why}; the patch below changes service code: apply it with --unsafe")
    )
    action = PatchSource(patch.path, patch.new_text)
    return Repair(finding, (action,), held=held, diff=patch.diff)


def _python_service(unit: str, patterns: Sequence[str]) -> PythonService | None:
    return next((s for s in python_services(patterns) if s.unit == unit), None)
