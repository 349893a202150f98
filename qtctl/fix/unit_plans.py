"""Repairs of systemd units: restart after a failure (QT101, QT701), a not-found unit's links
(QT102), and the Restart= drop-in (QT104)."""

from __future__ import annotations

import os
import pwd
import time

from qtctl.config import Config
from qtctl.diagnosis.cause import TRANSIENT
from qtctl.diagnosis.fleet import FleetUnit, exec_probe
from qtctl.diagnosis.unit_lint import DELIBERATE_STOP
from qtctl.diagnosis.unit_load import fleet_on_disk
from qtctl.engine.facts import NotFoundFacts, UnitFacts
from qtctl.engine.findings import Finding
from qtctl.fix.actions import (
    Action,
    DaemonReload,
    RemoveLink,
    ResetFailed,
    Restart,
    WriteDropIn,
)
from qtctl.fix.policy import (
    FixOptions,
    find_unit,
    named,
    never_change,
    never_restart,
    restart_permission,
)
from qtctl.fix.python_plans import imports_still_fail, still_unresolved
from qtctl.fix.repair import Planning, Repair
from qtctl.fix.restart_rules import (
    blocking_dependency,
    failed_run_lines,
    missing_modules,
    oneshot_job,
    permanent_cause,
)

RESTART_DROP_IN = "[Service]\nRestart=on-failure\nRestartSec=5\n"
DROP_IN_NAME = "50-qtctl-restart.conf"
HEALTH_RECHECK_SEC = 600.0  # a unit qtctl restarted this recently that fails again is not retried
TRANSIENT_CAUSES = TRANSIENT | {"redis-unreachable", "dependency"}  # and the older names


def plan_unit_failed(finding: Finding, facts: UnitFacts, planning: Planning) -> Repair:
    """QT101: reset-failed and restart, once the root cause is gone or was transient, and only
    when nothing a restart cannot cure (a missing folder, program, env file, user, module or
    required unit) is still missing."""
    unit = find_unit(planning.units, facts.unit)
    if unit is None:
        return Repair(finding, held="unit is no longer loaded (or systemd is unreachable)")
    actions = (ResetFailed(unit.name), Restart(unit.name))
    config = planning.ctx.config
    held = (
        never_restart(unit, config)
        or oneshot_job(unit, planning.options.only)
        or _failed_again_after_our_restart(unit, planning.restarts)
        or permanent_cause(unit)
        or _root_cause_still_there(finding.cause, unit, planning.options, config)
        or _module_still_missing(unit, planning)
        or blocking_dependency(unit, planning.units, planning.ctx)
        or restart_permission(unit, planning.options, planning.live)
    )
    return Repair(finding, actions, held=held, rule=_rule(held))


def _rule(held: str) -> str:
    """The rule a restart hold comes from, as data for the preview and the JSON."""
    for prefix, rule in RULES:
        if held.startswith(prefix):
            return rule
    return "held" if held else ""


RULES = (
    ("protected unit", "protected"),
    ("unit is masked", "masked"),
    ("unit is disabled", "disabled"),
    ("permanent cause", "permanent-cause"),
    ("a oneshot job", "oneshot"),
    ("root cause first", "root-cause-first"),
    ("qtctl fix restarted it", "failed-again"),
    ("restarting a service needs --unsafe", "unsafe"),
    ("live mode", "live-mode"),
)


def _module_still_missing(unit: FleetUnit, planning: Planning) -> str:
    """Its failed run says `No module named X` and X still does not resolve on the sys.path it
    would start with: the same restart fails the same way. Held as a root cause, so that a
    QT201 repair in this run lets the second pass restart it; the operator may vouch (--only)."""
    if named(unit, planning.options):
        return ""
    missing = sorted(missing_modules(failed_run_lines(planning.ctx, unit)))
    if not missing:
        return ""
    unresolved = still_unresolved(unit, missing, planning.ctx.config)
    if unresolved == []:
        return ""  # it resolves now: the module was installed or the path repaired
    what = unresolved[0] if unresolved else missing[0]
    return (
        f"root cause first: its failed run says No module named {what!r}, which "
        f"{'still does not resolve' if unresolved else 'qtctl cannot check'}: a restart fails "
        "the same way until an import repair (QT201) or you fix it (then name it: --only)"
    )


def _failed_again_after_our_restart(unit: FleetUnit, restarts: dict[str, float]) -> str:
    """A unit qtctl restarted that failed again: the cause was not transient; do not loop."""
    ours = restarts.get(unit.name)
    failed_at = int(unit.props.get("InactiveEnterTimestamp") or 0) / 1e6
    if ours is None or failed_at < ours:
        return ""
    when = time.strftime("%H:%M:%S UTC", time.gmtime(ours))
    return f"qtctl fix restarted it at {when} and it failed again: the cause is not transient"


def _root_cause_still_there(
    cause: str, unit: FleetUnit, options: FixOptions, config: Config
) -> str:
    probe = exec_probe(unit)
    if cause == "exec-not-found":
        if probe and probe.exists and probe.executable:
            return ""
        return f"root cause first: {unit.exec_path} is still missing or not executable"
    if cause == "bad-interpreter":
        if probe and probe.missing_interpreter:
            return f"root cause first: interpreter {probe.missing_interpreter} still missing"
        if probe and not (probe.shebang_cr or probe.bom or probe.body_crlf):
            return ""
        return f"root cause first: {probe.path if probe else 'the script'} still has CRLF/BOM"
    if cause == "bad-user":
        user = str(unit.props.get("User") or "")
        try:
            pwd.getpwnam(user)
        except KeyError:
            return f"root cause first: user {user!r} still does not exist"
        return ""
    if cause == "import-error":
        return imports_still_fail(unit, config)
    if cause in TRANSIENT_CAUSES:
        return ""  # a restart may cure it, and the re-check says honestly if not
    if named(unit, options):
        return ""  # the operator vouches that the cause in the code was fixed
    return (
        f"root cause {cause} is in the service itself: fix it, then "
        f"`qtctl fix --apply --unsafe --only {unit.name}`"
    )


def plan_not_found(finding: Finding, facts: NotFoundFacts, planning: Planning) -> Repair:
    """QT102: remove dangling links, daemon-reload, reset-failed the not-found unit."""
    actions: list[Action] = [
        RemoveLink(link.path, link.target)
        for link in facts.links
        if os.path.islink(link.path) and not os.path.exists(link.path)
    ]
    unit = planning.units.get(facts.unit)
    if actions:
        actions.append(DaemonReload())
    if unit is not None and unit.active_state == "failed":
        actions.append(ResetFailed(unit.name))
    referrers = ", ".join(facts.referrers)
    manual = f"remove {facts.unit} from the unit files of {referrers}" if referrers else ""
    held = never_change(facts.unit, planning.units, planning.ctx.config)
    return Repair(finding, tuple(actions), held=held if actions else "", manual=manual)


def plan_drop_in(finding: Finding, facts: UnitFacts, planning: Planning) -> Repair:
    """QT104 'no Restart=': a drop-in, never an edit of the vendor unit file. Never on fix's own
    initiative where staying down may be deliberate (`Restart=no` written out, a oneshot, an
    emergency or kill-switch unit): there only for a unit the operator names with --only."""
    path = f"/etc/systemd/system/{facts.unit}.d/{DROP_IN_NAME}"
    actions = (WriteDropIn(path, RESTART_DROP_IN), DaemonReload())
    held = never_change(facts.unit, planning.units, planning.ctx.config)
    rule = _rule(held)
    unit = find_unit(planning.units, facts.unit)
    asked = facts.unit in planning.options.only or bool(unit and named(unit, planning.options))
    deliberate = "" if held or asked else _deliberate_stop(facts.unit)
    if deliberate:
        held = (
            f"{deliberate}: staying down may be deliberate, and fix never adds Restart= on its "
            f"own there; name the unit to add the drop-in below: --only {facts.unit}"
        )
        rule = "deliberate"
    return Repair(finding, actions, held=held, resolves="no-restart", rule=rule)


def _deliberate_stop(name: str) -> str:
    """What says the unit may be meant to stay down, or ''."""
    if DELIBERATE_STOP.search(name):
        return "an emergency/kill-switch unit"
    loaded = next((u for u in fleet_on_disk([name]) if u.name == name), None)
    if loaded is None:
        return ""
    written = loaded.directives("Restart")
    if written:
        return f"Restart={written[-1].value} is written in its unit files"
    if loaded.value("Type") == "oneshot":
        return "a Type=oneshot unit"
    return ""


def plan_health_restart(finding: Finding, facts: UnitFacts, planning: Planning) -> Repair:
    """QT701: restart the unit, under the same rules as QT101's restart."""
    unit = find_unit(planning.units, facts.unit)
    if unit is None:
        return Repair(finding, held="unit is no longer loaded (or systemd is unreachable)")
    ours = planning.restarts.get(unit.name, 0.0)
    again = ""
    if ours and time.time() - ours < HEALTH_RECHECK_SEC:
        when = time.strftime("%H:%M:%S UTC", time.gmtime(ours))
        again = (
            f"qtctl fix restarted it at {when} and its health still fails: a restart does "
            "not cure it; read its journal"
        )
    held = (
        never_restart(unit, planning.ctx.config)
        or oneshot_job(unit, planning.options.only)
        or again
        or permanent_cause(unit)
        or blocking_dependency(unit, planning.units, planning.ctx)
        or restart_permission(unit, planning.options, planning.live)
    )
    return Repair(finding, (Restart(unit.name),), held=held, rule=_rule(held))
