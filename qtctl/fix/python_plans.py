"""Repairs of Python services' imports (QT201): a PYTHONPATH drop-in proven by re-resolving
every import with it, else a proven source patch (needs --unsafe)."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence

from qtctl.config import Config
from qtctl.diagnosis.fleet import FleetUnit
from qtctl.diagnosis.imports import ImportProblem, analyse, candidates, resolve
from qtctl.diagnosis.python_units import PythonService, python_services
from qtctl.engine.facts import UnitFacts
from qtctl.engine.findings import Finding
from qtctl.fix.actions import DaemonReload, PatchSource, WriteDropIn
from qtctl.fix.patch_proof import Change, harm, sharing
from qtctl.fix.policy import find_unit, never_change
from qtctl.fix.repair import Planning, Repair
from qtctl.fix.restart_rules import failed_run_lines, is_failing, missing_modules
from qtctl.fix.source_patch import SourcePatch, propose

PYTHON_DROP_IN = "qtctl-python.conf"


def plan_pythonpath(finding: Finding, facts: UnitFacts, planning: Planning) -> Repair:
    """QT201: the minimal PYTHONPATH drop-in, proven by re-resolving every import with it; for
    a protected unit, shown and held."""
    repair = _plan_pythonpath(finding, facts, planning)
    protected = never_change(facts.unit, planning.units, planning.ctx.config)
    if protected:
        return dataclasses.replace(repair, held=protected, rule="protected")
    return repair


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
        if len(homes) > 1 and not _first_place(homes[0], roots, service):
            return Repair(finding, held=_several(problem.module, homes))
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
        return _source_patch(finding, planning, service, why, failing)
    return _drop_in(finding, planning, service, pythonpath, failing)


def _drop_in(
    finding: Finding,
    planning: Planning,
    service: PythonService,
    pythonpath: str,
    failing: list[ImportProblem],
) -> Repair:
    """The PYTHONPATH drop-in, held without the unit's own failure as evidence or when the new
    path would move, lose or shadow an import."""
    path = f"/etc/systemd/system/{service.unit}.d/{PYTHON_DROP_IN}"
    content = f'[Service]\nEnvironment="PYTHONPATH={pythonpath}"\n'
    actions = (WriteDropIn(path, content), DaemonReload())
    held, rule = _no_evidence(planning, service, failing)
    if not held:
        roots = list(planning.ctx.config.fleet.code_roots)
        hurt = harm(service, roots, Change(env={**service.env, "PYTHONPATH": pythonpath}))
        held, rule = (f"the drop-in would do harm: {hurt}", "harm") if hurt else ("", "")
    return Repair(finding, actions, held=held, rule=rule)


def _first_place(home: str, roots: Sequence[str], service: PythonService) -> bool:
    """`home` is a root, the WorkingDirectory or a folder of the script (where `candidates`
    looks first), not one of the folders below a root."""
    script = service.script or ""
    return home in map(os.path.normpath, [*roots, service.cwd]) or script.startswith(home + "/")


def _several(module: str, homes: list[str]) -> str:
    """Why a module found in several folders below the code roots gets no PYTHONPATH: which
    copy the unit needs is the operator's choice, not fix's."""
    shown = ", ".join(homes[:4]) + (f" and {len(homes) - 4} more" if len(homes) > 4 else "")
    return f"{len(homes)} folders in the code roots provide {module} ({shown}): choose one"


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


def still_unresolved(unit: FleetUnit, modules: Sequence[str], config: Config) -> list[str] | None:
    """Which of `modules` the unit's sys.path (as it would start now) still cannot import; None
    when it is no Python service qtctl can analyse."""
    service = _python_service(unit.name, [unit.name])
    if service is None:
        return None
    path = [e.path for e in analyse(service, list(config.fleet.code_roots)).path]
    return [m for m in modules if resolve(m, path).failed_part]


def _source_patch(
    finding: Finding,
    planning: Planning,
    service: PythonService,
    why: str,
    failing: list[ImportProblem],
) -> Repair:
    roots = list(planning.ctx.config.fleet.code_roots)
    patch = propose(service, roots)
    if patch is None:
        return Repair(finding, held=f"{why}; no safe source patch found: fix the code by hand")
    action = PatchSource(patch.path, patch.new_text)
    blocked, rule = _no_evidence(planning, service, failing)
    if not blocked:
        blocked, rule = _patch_harm(planning, service, patch)
    if blocked:
        return Repair(finding, (action,), held=blocked, diff=patch.diff, rule=rule)
    held = (
        ""
        if planning.options.unsafe
        else (f"{why}; the patch below changes service code: apply it with --unsafe")
    )
    return Repair(finding, (action,), held=held, diff=patch.diff, rule="unsafe" if held else "")


def _no_evidence(
    planning: Planning, service: PythonService, failing: list[ImportProblem]
) -> tuple[str, str]:
    """Why the unit's own failure does not call for this import repair, or ('', '').

    The unit must be failing (QT101/QT103 in this run, or failed / between crashes now) and
    its failed run must say `ModuleNotFoundError: No module named 'X'` for a module the repair
    provides: a static import finding alone never changes a service's code or environment."""
    unit = find_unit(planning.units, service.unit)
    if unit is None:
        return "unit is no longer loaded (or systemd is unreachable): nothing changed", "gone"
    if planning.failing_finding(unit.name) is None and not is_failing(unit):
        return (
            f"the unit is {unit.active_state} ({unit.sub_state}), not failing: an import "
            "problem it does not fail for is no reason to change its code or environment; "
            "check it by hand",
            "not-failing",
        )
    missing = missing_modules(failed_run_lines(planning.ctx, unit))
    modules = [p.module for p in failing]
    if not missing:
        return (
            "its failed run shows no ModuleNotFoundError: it fails for another reason, so the "
            "import finding alone is no evidence for this repair",
            "no-evidence",
        )
    stray = sorted(m for m in missing if not any(_related(m, module) for module in modules))
    if stray:
        return (
            f"its failed run says No module named {stray[0]!r}, which this repair does not provide",
            "no-evidence",
        )
    return "", ""


def _related(missing: str, module: str) -> bool:
    return module == missing or module.startswith(missing + ".") or missing.startswith(module + ".")


def _patch_harm(planning: Planning, service: PythonService, patch: SourcePatch) -> tuple[str, str]:
    """Why patching the file would hurt a unit that runs it (protected, still failing, an
    import moved or shadowed), or ('', '')."""
    config = planning.ctx.config
    roots = list(config.fleet.code_roots)
    for other in sharing(service, python_services(config.fleet.units)):
        protected = never_change(other.unit, planning.units, config)
        if protected:
            return f"{other.unit} runs the same file: {protected}", "protected"
        proof = analyse(other, roots, script_source=patch.new_text)
        still = [p for p in proof.problems if p.code == "QT201" and p.module]
        if still:
            return (
                f"the patched file would still fail for {other.unit}: {still[0].cause}",
                "harm",
            )
        hurt = harm(other, roots, Change(script_source=patch.new_text))
        if hurt:
            return f"the patch would do harm to {other.unit}: {hurt}", "harm"
    return "", ""


def _python_service(unit: str, patterns: Sequence[str]) -> PythonService | None:
    return next((s for s in python_services(patterns) if s.unit == unit), None)
