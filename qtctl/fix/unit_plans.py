"""Repairs of systemd units: restart after a failure (QT101, QT701), a not-found unit's links
(QT102), and the Restart= drop-in (QT104)."""

from __future__ import annotations

import os
import pwd
import time

from qtctl.config import Config
from qtctl.diagnosis.fleet import FleetUnit, exec_probe
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
from qtctl.fix.python_plans import imports_still_fail
from qtctl.fix.repair import Planning, Repair

RESTART_DROP_IN = "[Service]\nRestart=on-failure\nRestartSec=5\n"
DROP_IN_NAME = "50-qtctl-restart.conf"
HEALTH_RECHECK_SEC = 600.0  # a unit qtctl restarted this recently that fails again is not retried
TRANSIENT_CAUSES = frozenset(
    {"redis-unreachable", "timeout", "oom-kill", "signal", "dependency", "start-limit-hit"}
)


def plan_unit_failed(finding: Finding, facts: UnitFacts, planning: Planning) -> Repair:
    """QT101: reset-failed and restart, once the root cause is gone or was transient."""
    unit = find_unit(planning.units, facts.unit)
    if unit is None:
        return Repair(finding, held="unit is no longer loaded (or systemd is unreachable)")
    actions = (ResetFailed(unit.name), Restart(unit.name))
    held = (
        never_restart(unit, planning.ctx.config)
        or _failed_again_after_our_restart(unit, planning.restarts)
        or _root_cause_still_there(finding.cause, unit, planning.options, planning.ctx.config)
        or restart_permission(unit, planning.options, planning.live)
    )
    return Repair(finding, actions, held=held)


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
    """QT104 'no Restart=': a drop-in, never an edit of the vendor unit file."""
    path = f"/etc/systemd/system/{facts.unit}.d/{DROP_IN_NAME}"
    actions = (WriteDropIn(path, RESTART_DROP_IN), DaemonReload())
    held = never_change(facts.unit, planning.units, planning.ctx.config)
    return Repair(finding, actions, held=held, resolves="no-restart")


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
        or again
        or restart_permission(unit, planning.options, planning.live)
    )
    return Repair(finding, (Restart(unit.name),), held=held)
