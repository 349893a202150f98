"""QT101/QT108 dependency-missing: point a unit's `Requires=` at the unit that really provides it.

The edit is an edited copy of the requiring unit file written to /etc/systemd/system under the
unit's own name (a `Requires=` cannot be taken back by a drop-in: systemd only adds
dependencies). The previous file there, or its absence, is backed up and journaled, so
`fix --undo` puts it back; then a daemon-reload and a start. Only with --unsafe, never for a
protected, masked or disabled unit, and only while the evidence still holds: the unit is down,
the missing unit still has no unit file, the provider is loaded, and no drop-in names it too.
"""

from __future__ import annotations

import re

from qtctl.adapters import safe_files
from qtctl.engine.facts import DependencyFacts, UnitFacts
from qtctl.engine.findings import Finding
from qtctl.errors import AdapterUnavailable, QtctlError
from qtctl.fix.actions import Action, DaemonReload, ResetFailed, Restart, WriteDropIn
from qtctl.fix.policy import find_unit, never_change, never_restart, restart_permission
from qtctl.fix.repair import Planning, Repair
from qtctl.fix.unit_plans import plan_unit_failed

UNIT_DIR = "/etc/systemd/system"
MAX_UNIT_BYTES = 1 << 20
DEPENDENCY_KEYS = ("Requires", "Requisite", "BindsTo", "Wants", "After", "Before", "PartOf")


def plan_unit_down(finding: Finding, facts: UnitFacts, planning: Planning) -> Repair:
    """QT101: a failed unit whose restart systemd refuses for a missing dependency gets the
    edited copy; any other failed unit the restart of plan_unit_failed."""
    if isinstance(facts, DependencyFacts):
        return plan_dependency(finding, facts, planning)
    return plan_unit_failed(finding, facts, planning)


def plan_dependency(finding: Finding, facts: DependencyFacts, planning: Planning) -> Repair:
    """An edited copy of the unit file with `facts.missing` replaced by `facts.provider`."""
    unit = find_unit(planning.units, facts.unit)
    if unit is None:
        return Repair(finding, held="unit is no longer loaded (or systemd is unreachable)")
    config = planning.ctx.config
    held = never_change(unit.name, planning.units, config) or never_restart(unit, config)
    if held:
        return Repair(finding, held=held, rule="protected")
    stale = _evidence_gone(facts, planning)
    if stale:
        return Repair(finding, held=stale, rule="not-failing")
    try:
        text = safe_files.read_file(facts.fragment, MAX_UNIT_BYTES)[0].decode("utf-8")
    except (OSError, QtctlError, UnicodeDecodeError) as exc:
        return Repair(finding, held=f"cannot read {facts.fragment}: {exc}", manual=_manual(facts))
    edited = replace_dependency(text, facts.missing, facts.provider)
    if edited == text or _drop_ins_name(unit.props.get("DropInPaths") or [], facts.missing):
        return Repair(
            finding,
            held=f"{facts.missing} is named in a drop-in or not in {facts.fragment} itself",
            manual=_manual(facts),
        )
    target = f"{UNIT_DIR}/{unit.name}"
    actions: tuple[Action, ...] = (WriteDropIn(target, edited), DaemonReload())
    if unit.active_state == "failed":
        actions += (ResetFailed(unit.name),)
    actions += (Restart(unit.name),)
    held = restart_permission(unit, planning.options, planning.live)
    return Repair(
        finding, actions, held=held, resolves="dependency-missing", diff=_diff(text, edited, target)
    )


def replace_dependency(text: str, missing: str, provider: str) -> str:
    """The unit text with `missing` replaced by `provider` in its dependency settings only
    (whole names; other lines untouched)."""
    name = re.compile(rf"(?<![\w@.\\-]){re.escape(missing)}(?![\w@.\\-])")
    key = re.compile(rf"^\s*({'|'.join(DEPENDENCY_KEYS)})\s*=")
    lines = text.split("\n")
    return "\n".join(name.sub(provider, line) if key.match(line) else line for line in lines)


def _evidence_gone(facts: DependencyFacts, planning: Planning) -> str:
    unit = planning.units.get(facts.unit)
    if unit is not None and unit.active_state not in ("inactive", "failed"):
        return f"{facts.unit} is {unit.active_state} now: nothing to repair"
    try:
        rows = planning.ctx.systemd().units_by_names([facts.missing, facts.provider])
    except AdapterUnavailable as exc:
        return f"systemd unreachable: {exc.reason}"
    states = [row.load_state for row in rows]
    if states != ["not-found", "loaded"]:
        return f"{facts.missing} / {facts.provider} are now {'/'.join(states)}: re-run doctor"
    return ""


def _drop_ins_name(paths: list[str], missing: str) -> bool:
    for path in paths:
        try:
            data = safe_files.read_file(str(path), MAX_UNIT_BYTES)[0]
        except (OSError, QtctlError):
            return True  # unread: do not claim the copy removes every mention
        if missing.encode() in data:
            return True
    return False


def _manual(facts: DependencyFacts) -> str:
    return (
        f"copy {facts.fragment} to {UNIT_DIR}/{facts.unit}, replace {facts.missing} by "
        f"{facts.provider} in its Requires=/After= lines, systemctl daemon-reload, start it"
    )


def _diff(old: str, new: str, target: str) -> str:
    import difflib

    return "".join(
        difflib.unified_diff(
            old.splitlines(keepends=True), new.splitlines(keepends=True), target, target
        )
    )
