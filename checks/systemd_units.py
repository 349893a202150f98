"""QT101-QT103, QT108: failed, not-found-but-referenced, crash-looping and held-down fleet units,
with root causes from the failed run's own evidence."""

from __future__ import annotations

import glob
import itertools
import os
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from qtctl.adapters.journal import JournalBatch, printable
from qtctl.diagnosis import unit_runs
from qtctl.diagnosis.cause import Cause
from qtctl.diagnosis.fleet import FleetUnit, fleet_units, journal_batch, journal_events
from qtctl.diagnosis.redis_dependency import redis_down
from qtctl.diagnosis.unit_dependencies import HeldDown, held_down, refused_restarts
from qtctl.diagnosis.unit_file import UNIT_DIRS
from qtctl.engine.check import Check
from qtctl.engine.context import CheckContext
from qtctl.engine.facts import DanglingLink, DependencyFacts, NotFoundFacts, UnitFacts
from qtctl.engine.findings import CodeDoc, Finding, Severity
from qtctl.engine.refs import needed_by, needs, unit_refs

REFERRER_PROPS = ("WantedBy", "RequiredBy", "RequisiteOf", "BoundBy", "PartOf", "TriggeredBy")
STRONG_REFERRER_PROPS = ("RequiredBy", "RequisiteOf", "BoundBy", "TriggeredBy")  # QT102 warns
ORDER_PROPS = ("Before", "After")  # on the stub: units ordered after / before it
LOOP_WINDOW_SEC = 300  # restarts this recent mean the loop is still going on
LOOP_RESTARTS = 3
SETTLE_SEC = 5.0  # up this long past its RestartSec (and twice its recent run length): settled

UNIT_FAILED = CodeDoc(
    code="QT101",
    title="unit failed",
    severity="error",
    meaning="A fleet unit is in the failed state. `cause` classifies why, from the unit's "
    "properties and the journal lines of the run that failed (its invocation ID): "
    "import-error, bad-interpreter, exec-not-found, script-missing, workdir-missing, "
    "log-dir-missing, namespace-path-missing, credential-missing, env-file-missing, bad-user, "
    "control-process-failed, sandbox-denied, setup-failed, oom-kill, timeout, signal, "
    "core-dump, start-limit-hit (with the cause under it), dependency-down, dependency-missing "
    "(it Requires= a unit that does not exist: systemd refuses to restart it), redis-unreachable, "
    "python-exception, resources (systemd could not set it up to start, e.g. an "
    "EnvironmentFile= it refuses: see QT703) or exit-code. docs/causes.md lists the evidence.",
    why="The service is down; whatever it produced (signals, proposals, closes) has stopped.",
    fix="Fix the root cause named in the finding, then `systemctl reset-failed UNIT && systemctl "
    "restart UNIT`; `qtctl fix` does the restart once the cause is gone or was transient.",
    repair=UnitFacts,
)
UNIT_NOT_FOUND = CodeDoc(
    code="QT102",
    title="unit not found but still referenced",
    severity="warning/info",
    meaning="A fleet unit has no unit file (LoadState=not-found) yet something still pulls it "
    "in: a dangling *.wants/ or *.requires/ symlink, a Wants=/Requires=/After= of another unit, a "
    "timer, or a failed state left behind after its file was deleted. Only wanted or ordered "
    "against (systemd skips a missing Wants= and starts the unit anyway), it is an info.",
    why="Deleted services keep showing in `systemctl --failed`, and units that Require= them "
    "fail to start.",
    fix="Remove the dangling symlinks, drop the references from the other units, "
    "`systemctl daemon-reload` and `systemctl reset-failed UNIT`.",
    repair=NotFoundFacts,
)
UNIT_FLAPPING = CodeDoc(
    code="QT103",
    title="unit crash-looping or flapping",
    severity="error/warning",
    meaning="A fleet unit sits in activating (auto-restart) now (error), or restarted more than "
    "systemd.restart_warn times within systemd.flap_window_sec (warning). Restart=always "
    "units never reach `failed`, so `systemctl --failed` shows nothing.",
    why="A crash loop burns CPU, floods the journal and hides a service that never works.",
    fix="Read the cause in the finding and fix it; the loop stops by itself once the service "
    "can start.",
)
UNIT_HELD_DOWN = CodeDoc(
    code="QT108",
    title="unit held down by a dependency",
    severity="error",
    meaning="An enabled fleet unit is inactive because a unit it Requires= (or Requisite=, "
    "BindsTo=) does not exist (cause dependency-missing: every `systemctl start` of it is "
    "refused with 'Unit X not found.') or has failed (cause dependency-down). When one existing "
    "unit evidently provides the missing one (redis-server.service for quantum-redis.service) "
    "the finding names it.",
    why="The service is down and `systemctl --failed` does not show it: it never failed.",
    fix="Point the dependency at the unit that exists (`qtctl fix --unsafe` writes an edited "
    "copy of the unit file under /etc/systemd/system, backed up and undoable), or install the "
    "missing unit; for dependency-down, fix the failed unit first.",
    repair=DependencyFacts,
)


def run(ctx: CheckContext) -> Iterator[Finding]:
    """Report failed, dangling, looping and held-down fleet units in one pass over the fleet."""
    units = fleet_units(ctx)
    loaded = [u for u in units if u.load_state == "loaded"]
    failed = [u for u in loaded if u.active_state == "failed"]
    restarts = _restart_counts(ctx, loaded)
    unstable = [u for u in loaded if u.name in restarts]
    batch = journal_batch(ctx, failed + unstable)
    refused = refused_restarts(ctx, failed)
    for unit in failed:
        yield _failed(ctx, unit, batch, refused.get(unit.name))
    for unit in unstable:
        yield _flapping(ctx, unit, restarts[unit.name], batch)
    for unit in units:
        if unit.load_state == "not-found":
            finding = _not_found(unit)
            if finding:
                yield finding
    for held in held_down(ctx, loaded):
        yield _held_down(held)


def _restart_counts(ctx: CheckContext, units: Sequence[FleetUnit]) -> dict[str, tuple[int, int]]:
    """Unit -> (restarts in the loop window, in the flap window) for looping or flapping units;
    a unit that has settled since (running well past its restart rhythm) is neither."""
    settings = ctx.config.systemd
    now = ctx.clock()
    events = journal_events(ctx).restarts
    found = {}
    for unit in units:
        times = events.get(unit.name, [])
        if unit.active_state == "failed":
            continue
        recent = sum(t >= (now - LOOP_WINDOW_SEC) * 1e6 for t in times)
        window = sum(t >= (now - settings.flap_window_sec) * 1e6 for t in times)
        looping = unit.sub_state == "auto-restart" or recent >= LOOP_RESTARTS
        # only now its properties: reading them for every healthy unit costs a D-Bus round
        if (looping or window >= settings.restart_warn) and not _settled(unit, times, now):
            found[unit.name] = (recent if looping else 0, window)
    return found


def _settled(unit: FleetUnit, times: Sequence[int], now: float) -> bool:
    """Active and running since its current ActiveEnterTimestamp for longer than its
    RestartSec plus SETTLE_SEC and than twice the longest run between its recent restarts:
    restart history from before (a repair, an old loop) does not make it a crash loop."""
    if unit.active_state != "active" or unit.sub_state != "running":
        return False
    entered = int(unit.props.get("ActiveEnterTimestamp") or 0) / 1e6
    if not entered:
        return False
    up = now - entered
    before = sorted(t / 1e6 for t in times if t / 1e6 <= entered)
    runs = [b - a for a, b in itertools.pairwise(before)]
    if before:
        runs.append(entered - before[-1])
    restart_sec = int(unit.props.get("RestartUSec") or 0) / 1e6
    return up > restart_sec + SETTLE_SEC and up > 2 * max(runs, default=0.0)


def _failed(
    ctx: CheckContext, unit: FleetUnit, batch: JournalBatch, refused: HeldDown | None
) -> Finding:
    lines = unit_runs.evidence_lines(unit, batch)
    roots = ctx.config.fleet.code_roots
    cause = redis_down(ctx, unit_runs.unit_cause(unit, batch, roots), lines)
    if refused:
        cause = _refused(refused, cause)
    history = unit_runs.summary(unit, batch, roots)
    props = unit.props
    detail = (
        f"Result={props.get('Result')}, main process {_exit_text(unit)}",
        f"failed since {_when(props.get('InactiveEnterTimestamp'))}, "
        f"restarts: {props.get('NRestarts', 0)}",
        *((history,) if history else ()),
        *_tail(lines, ctx.config.systemd.journal_lines),
        *((f"journal unavailable: {batch.problem}",) if batch.problem else ()),
    )
    return Finding(
        code=UNIT_FAILED.code,
        severity=Severity.ERROR,
        subject=unit.name,
        message=f"unit failed: {cause.summary}",
        cause=cause.kind,
        detail=detail,
        fix_hint=_held_hint(refused) if refused else _restart_hint(cause),
        facts=_dependency_facts(refused) if refused else UnitFacts(unit.name),
        refs=unit_refs(unit.exec_path, unit.exec_argv, props, cause.missing),
    )


def _flapping(
    ctx: CheckContext, unit: FleetUnit, counts: tuple[int, int], batch: JournalBatch
) -> Finding:
    recent, window = counts
    looping = unit.sub_state == "auto-restart" or recent > 0
    lines = unit_runs.evidence_lines(unit, batch)
    roots = ctx.config.fleet.code_roots
    cause = redis_down(ctx, unit_runs.unit_cause(unit, batch, roots), lines)
    history = unit_runs.summary(unit, batch, roots)
    state = "crash-looping now" if looping else "flapping"
    seconds = int(ctx.config.systemd.flap_window_sec)
    return Finding(
        code=UNIT_FLAPPING.code,
        severity=Severity.ERROR if looping else Severity.WARNING,
        subject=unit.name,
        message=f"{state} ({unit.active_state} {unit.sub_state}): restart counter "
        f"{unit.props.get('NRestarts', 0)}, {window} restart(s) in the last {seconds} s; "
        f"{cause.summary}" + (f" ({history})" if history else ""),
        cause=cause.kind,
        detail=(
            f"Restart={unit.props.get('Restart')}, last exit: {_exit_text(unit)}",
            *((history,) if history else ()),
            *_tail(lines, ctx.config.systemd.journal_lines),
        ),
        fix_hint="fix the cause; the loop stops once the service can start "
        "(`systemctl --failed` does not show this unit)",
        refs=unit_refs(unit.exec_path, unit.exec_argv, unit.props, cause.missing),
    )


def _refused(held: HeldDown, exited: Cause) -> Cause:
    """A failed unit systemd will not restart: the missing dependency is what keeps it down."""
    provided = f"; {held.provider} evidently provides it" if held.provider else ""
    return Cause(
        "dependency-missing",
        f"{held.directive}={held.dependency}, which does not exist: systemd refuses to restart "
        f"it{provided} (it had stopped on {exited.kind}: {exited.summary})",
        missing=held.dependency,
        likely=held.provider,
        underlying=exited.kind,
    )


def _held_hint(held: HeldDown) -> str:
    if held.provider:
        return f"point {held.directive}= at {held.provider} (fix --unsafe writes an edited copy)"
    return f"install {held.dependency}, or edit {held.directive}= in the unit file by hand"


def _dependency_facts(held: HeldDown) -> UnitFacts:
    fragment = str(held.unit.props.get("FragmentPath") or "")
    if held.provider and fragment:
        return DependencyFacts(held.unit.name, held.dependency, held.provider, fragment)
    return UnitFacts(held.unit.name)


def _held_down(held: HeldDown) -> Finding:
    dep = held.dependency
    if held.kind == "dependency-missing":
        what = f"{held.directive}={dep}, which does not exist: every start is refused"
        provided = f"; {held.provider} evidently provides it" if held.provider else ""
        hint = _held_hint(held)
    else:
        what, provided = f"{held.directive}={dep}, which has failed", ""
        hint = f"fix {dep} first (its own finding); this unit starts with it"
    fragment = str(held.unit.props.get("FragmentPath") or "")
    facts = _dependency_facts(held)
    return Finding(
        code=UNIT_HELD_DOWN.code,
        severity=Severity.ERROR,
        subject=held.unit.name,
        message=f"down (inactive, enabled): {what}{provided}",
        cause=held.kind,
        detail=(f"unit file: {fragment or '?'}",),
        fix_hint=hint,
        facts=facts if isinstance(facts, DependencyFacts) else None,
        refs=needs(dep),
    )


def _not_found(unit: FleetUnit) -> Finding | None:
    props = unit.props
    referrers = sorted({r for p in REFERRER_PROPS for r in props.get(p) or []})
    ordered = sorted({r for p in ORDER_PROPS for r in props.get(p) or []} - set(referrers))
    links = dangling_links(unit.name)
    if not (referrers or ordered or links or unit.active_state == "failed"):
        return None
    parts = []
    if referrers:
        parts.append(f"wanted/required by {', '.join(referrers)}")
    if ordered:
        parts.append(f"ordered against by {', '.join(ordered)}")
    if unit.active_state == "failed":
        parts.append("still listed as failed")
    dangling = tuple(DanglingLink(link, os.readlink(link)) for link in links)
    detail = tuple(f"dangling symlink {d.path} -> {d.target}" for d in dangling)
    failed = unit.active_state == "failed"
    facts = NotFoundFacts(unit.name, tuple(referrers), dangling, failed)
    return Finding(
        code=UNIT_NOT_FOUND.code,
        severity=_not_found_severity(props, bool(dangling or failed)),
        subject=unit.name,
        message=f"unit file not found but still referenced: {'; '.join(parts)}",
        cause="not-found",
        detail=detail,
        fix_hint="remove dangling links, daemon-reload, reset-failed; drop the references "
        "from the listed units by hand",
        facts=facts if dangling or failed else None,
        refs=needed_by([*referrers, *ordered]),
    )


def _not_found_severity(props: Mapping[str, Any], leftovers: bool) -> Severity:
    """A warning when something needs the missing unit (`Requires=`, `Requisite=`, `BindsTo=`,
    a timer) or it left links or a failed state behind; an info when it is only wanted or
    ordered against: systemd skips a missing `Wants=` silently and starts the unit anyway."""
    strong = any(props.get(p) for p in STRONG_REFERRER_PROPS)
    return Severity.WARNING if strong or leftovers else Severity.INFO


def dangling_links(unit: str) -> list[str]:
    """*.wants/ and *.requires/ symlinks named `unit` whose target does not exist."""
    found = []
    for base in UNIT_DIRS:
        for kind in ("wants", "requires"):
            for link in glob.glob(os.path.join(glob.escape(base), f"*.{kind}", glob.escape(unit))):
                if os.path.islink(link) and not os.path.exists(link):
                    found.append(link)
    return sorted(found)


def unit_cause(ctx: CheckContext, unit: FleetUnit) -> Cause:
    """The classified cause of a unit's last failure (used by fix to re-check)."""
    batch = journal_batch(ctx, [unit])
    cause = unit_runs.unit_cause(unit, batch, ctx.config.fleet.code_roots)
    return redis_down(ctx, cause, unit_runs.evidence_lines(unit, batch))


def _tail(lines: list[str], count: int) -> tuple[str, ...]:
    noise = ("Started ", "Starting ", "Scheduled restart job")
    relevant = [line for line in lines if not line.startswith(noise) and line.strip()]
    return tuple(printable(line) for line in relevant[-count:])


def _exit_text(unit: FleetUnit) -> str:
    code = int(unit.props.get("ExecMainCode") or 0)
    status = int(unit.props.get("ExecMainStatus") or 0)
    kind = {1: "exited", 2: "killed", 3: "dumped"}.get(code, "code=" + str(code))
    return f"{kind}, status={status}"


def _when(usec: object) -> str:
    value = int(str(usec or 0))
    if not value:
        return "unknown"
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(value / 1e6))


def _restart_hint(cause: Cause) -> str:
    if cause.kind == "start-limit-hit" and not cause.transient:
        return (
            f"fix the {cause.underlying or 'failure'} that tripped the start limit first; "
            "then reset-failed and restart (needs --unsafe)"
        )
    if cause.transient:
        return f"cause {cause.kind} may be transient: reset-failed and restart (needs --unsafe)"
    return f"fix the {cause.kind} first; then reset-failed and restart (needs --unsafe)"


CHECK = Check(
    name="systemd_units",
    codes=(UNIT_FAILED, UNIT_NOT_FOUND, UNIT_FLAPPING, UNIT_HELD_DOWN),
    run=run,
)
