"""Turn findings into repairs: exact actions, or the rule that holds a repair back."""

from __future__ import annotations

import os
import pwd
import time
from collections.abc import Callable, Sequence

from qtctl.adapters.stream_archive import order
from qtctl.checks.systemd_units import dangling_links
from qtctl.config import Config
from qtctl.diagnosis.fleet import FleetUnit, exec_probe, fleet_units
from qtctl.diagnosis.imports import analyse, candidates
from qtctl.diagnosis.python_units import PythonService, python_services
from qtctl.engine.context import CheckContext
from qtctl.engine.findings import Finding
from qtctl.errors import AdapterUnavailable
from qtctl.fix.actions import (
    Action,
    ConvertLF,
    CreateGroup,
    DaemonReload,
    DeleteConsumer,
    HandOver,
    MigrateStream,
    PatchSource,
    RemoveLink,
    ResetFailed,
    Restart,
    TrimStream,
    WriteDropIn,
)
from qtctl.fix.journal import FixJournal
from qtctl.fix.policy import FixOptions, live_mode, never_restart, restart_permission
from qtctl.fix.repair import Planning, Repair
from qtctl.fix.service_repairs import plan_env_file, plan_health_restart, plan_quarantine
from qtctl.fix.source_patch import propose
from qtctl.stream_limits import limits_for

RESTART_DROP_IN = "[Service]\nRestart=on-failure\nRestartSec=5\n"
DROP_IN_NAME = "50-qtctl-restart.conf"
PYTHON_DROP_IN = "qtctl-python.conf"


Planner = Callable[[Finding, Planning], Repair]


def plan(findings: Sequence[Finding], ctx: CheckContext, options: FixOptions) -> list[Repair]:
    """A repair for every fixable finding, in report order."""
    fixable = [f for f in findings if f.fixable and f.code in PLANNERS]
    if not fixable:
        return []
    try:
        units = {u.name: u for u in fleet_units(ctx)}
    except AdapterUnavailable:
        units = {}  # file repairs still plan; unit repairs say the unit is not reachable
    live = live_mode(ctx.config, units.values())
    restarts = FixJournal(ctx.config.fix.state_dir).last_restarts()
    planning = Planning(ctx, options, units, live, restarts)
    return [PLANNERS[f.code](f, planning) for f in fixable]


def plan_unit_failed(finding: Finding, planning: Planning) -> Repair:
    """QT101: reset-failed and restart, once the root cause is gone or was transient."""
    unit = planning.units.get(finding.subject)
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
        return _imports_still_fail(unit, config)
    if cause in (
        "redis-unreachable",
        "timeout",
        "oom-kill",
        "signal",
        "dependency",
        "start-limit-hit",
    ):
        return ""  # transient: a restart may cure it, and the re-check says honestly if not
    if unit.name in options.only:
        return ""  # the operator vouches that the cause in the code was fixed
    return (
        f"root cause {cause} is in the service itself: fix it, then "
        f"`qtctl fix --apply --unsafe --only {unit.name}`"
    )


def _imports_still_fail(unit: FleetUnit, config: Config) -> str:
    """An import-error is gone once the static resolution of the unit's imports succeeds."""
    service = _python_service(unit.name, [unit.name])
    if service is None:
        return ""
    roots = list(config.fleet.code_roots)
    failing = [p for p in analyse(service, roots).problems if p.code == "QT201"]
    if failing:
        return f"root cause first: {failing[0].module or 'start-up'}: {failing[0].cause}"
    return ""


def plan_not_found(finding: Finding, planning: Planning) -> Repair:
    """QT102: remove dangling links, daemon-reload, reset-failed the not-found unit."""
    actions: list[Action] = [
        RemoveLink(link, os.readlink(link)) for link in dangling_links(finding.subject)
    ]
    unit = planning.units.get(finding.subject)
    if actions:
        actions.append(DaemonReload())
    if unit is not None and unit.active_state == "failed":
        actions.append(ResetFailed(unit.name))
    referrers = finding.message.partition("wanted/required by ")[2].split(";")[0]
    manual = f"remove {finding.subject} from the unit files of {referrers}" if referrers else ""
    return Repair(finding, tuple(actions), manual=manual)


def plan_drop_in(finding: Finding, planning: Planning) -> Repair:
    """QT104 'no Restart=': a drop-in, never an edit of the vendor unit file."""
    path = f"/etc/systemd/system/{finding.subject}.d/{DROP_IN_NAME}"
    return Repair(
        finding, (WriteDropIn(path, RESTART_DROP_IN), DaemonReload()), resolves="no-restart"
    )


def plan_crlf_executed(finding: Finding, planning: Planning) -> Repair:
    """QT301: convert the executed script to LF (the unit's restart is QT101's repair)."""
    path = finding.detail[0]
    if os.path.islink(path):
        return Repair(finding, (ConvertLF(path),), held="a symlink: convert its target by hand")
    return Repair(finding, (ConvertLF(path),))


def plan_crlf_sources(finding: Finding, planning: Planning) -> Repair:
    """QT302: convert source files to LF, only when asked for explicitly."""
    paths = [line for line in finding.detail if line.startswith("/") and os.path.isfile(line)]
    actions = tuple(ConvertLF(p) for p in paths)
    config = planning.ctx.config
    asked = any(p.strip().upper() == "QT302" for p in config.doctor.select)
    if not (asked or config.fix.convert_source_files):
        return Repair(
            finding,
            actions,
            held="converting source files needs --select QT302 or fix.convert_source_files = true",
        )
    return Repair(finding, actions)


def plan_pythonpath(finding: Finding, planning: Planning) -> Repair:
    """QT201: the minimal PYTHONPATH drop-in, proven by re-resolving every import with it."""
    config = planning.ctx.config
    service = _python_service(finding.subject, config.fleet.units)
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


def plan_trim(finding: Finding, planning: Planning) -> Repair:
    """QT401: trim to the stream's retention, archiving every trimmed entry first."""
    limits = limits_for(planning.ctx.config.streams, finding.subject)
    action = TrimStream(finding.subject, limits.retention_maxlen, limits.retention_max_age_sec)
    held = (
        ""
        if planning.options.unsafe
        else "trimming a stream needs --unsafe (the trimmed entries are archived and restorable)"
    )
    return Repair(finding, (action,), held=held)


def plan_group(finding: Finding, planning: Planning) -> Repair:
    """QT403 group-missing: create it at streams.group_start_id (additive, no --unsafe)."""
    fields = _detail_fields(finding)
    start = planning.ctx.config.streams.group_start_id
    return Repair(finding, (CreateGroup(fields["stream"], fields["group"], start),))


def plan_migrate(finding: Finding, planning: Planning) -> Repair:
    """QT405 near-miss: move entries into the expected name, only where the evidence agrees."""
    sources = [line.split(": ", 1)[1] for line in finding.detail if line.startswith("migrate-")]
    against = [line for line in finding.detail if line.startswith("evidence: ")]
    if against:
        return Repair(finding, held=against[0].removeprefix("evidence: "))
    actions = tuple(MigrateStream(source, finding.subject) for source in sources)
    blocked = _bridge_conflict(planning, sources, finding.subject)
    if blocked:
        return Repair(finding, actions, held=blocked)
    held = (
        ""
        if planning.options.unsafe
        else "moving entries between streams changes what consumers read: needs --unsafe "
        "(the source is archived first)"
    )
    return Repair(finding, actions, held=held)


def _bridge_conflict(planning: Planning, sources: list[str], target: str) -> str:
    """Entries beyond the position of qtctl's bridge into `target` would stop that bridge as a
    foreign writer (and may repeat what it will copy): say so before moving anything."""
    from qtctl.daemon.runtime import FatalDaemonError
    from qtctl.daemons.bridge.route import parse_routes

    try:
        routes = [r for r in parse_routes(planning.ctx.config) if target in r.destinations]
    except FatalDaemonError:
        return ""  # no valid bridge routes: the bridge cannot be running on them
    if not routes:
        return ""
    adapter = planning.ctx.redis()
    with adapter.guard("planning the migration"):
        pipe = adapter.client.pipeline(transaction=False)
        for route in routes:
            pipe.hget(route.state_key, "position")
        for source in sources:
            pipe.xrevrange(source, count=1)
        replies = pipe.execute()
    positions, lasts = replies[: len(routes)], replies[len(routes) :]
    for route, position in zip(routes, positions, strict=True):
        for source, last in zip(sources, lasts, strict=True):
            if position and last and order(str(last[0][0])) > order(str(position)):
                return (
                    f"qtctl's bridge copies {route.source} into {target} and is at {position}; "
                    f"{source} ends at {last[0][0]}: entries beyond the bridge's position "
                    "would stop it as a foreign writer (and may repeat what it copies). "
                    "Compare them with the source first, then migrate only the older ones"
                )
    return ""


def _detail_fields(finding: Finding) -> dict[str, str]:
    return dict(line.split(": ", 1) for line in finding.detail if ": " in line)


def plan_hand_over(finding: Finding, planning: Planning) -> Repair:
    """QT404: a live consumer of the same group takes the dead one's pending entries."""
    fields = _detail_fields(finding)
    if finding.cause == "idle-consumer":
        delete = DeleteConsumer(fields["stream"], fields["group"], fields["consumer"])
        return Repair(finding, (delete,))
    live = [c.strip() for c in fields.get("live consumers", "").split(",") if c.strip()]
    if not live:
        return Repair(
            finding,
            held="no live consumer in the group to take the pending entries: "
            "start the consumer service, it will claim them",
        )
    action = HandOver(fields["stream"], fields["group"], fields["consumer"], live[0])
    held = (
        ""
        if planning.options.unsafe
        else ("redelivering entries can process an event twice: needs --unsafe")
    )
    return Repair(finding, (action,), held=held)


PLANNERS: dict[str, Planner] = {
    "QT101": plan_unit_failed,
    "QT102": plan_not_found,
    "QT104": plan_drop_in,
    "QT201": plan_pythonpath,
    "QT301": plan_crlf_executed,
    "QT401": plan_trim,
    "QT403": plan_group,
    "QT404": plan_hand_over,
    "QT405": plan_migrate,
    "QT302": plan_crlf_sources,
    "QT504": plan_quarantine,
    "QT701": plan_health_restart,
    "QT703": plan_env_file,
}
