"""Fresh evidence a restart or an import repair needs: the failed run's own journal, the set-up
steps a restart cannot cure while what they need is missing, and the units a restart waits for.

Nothing here trusts a finding's text: it reads the unit's properties from systemd, the files
they name, and the journal entries of the unit's last invocation (untrusted text, matched
exactly, never echoed beyond the module name it proves).
"""

from __future__ import annotations

import logging
import os
import pwd
import re
from collections.abc import Mapping

from qtctl.adapters.journal import Journal
from qtctl.diagnosis.fleet import FleetUnit, exec_probe
from qtctl.engine.context import CheckContext
from qtctl.errors import AdapterUnavailable

log = logging.getLogger(__name__)
MODULE_NOT_FOUND = re.compile(r"ModuleNotFoundError: No module named '([A-Za-z_][\w.]*)'")
FAILING_STATES = frozenset({"failed"})
LOOPING_SUBSTATES = frozenset({"auto-restart"})
MAX_LINES = 400  # of the failed run: a traceback is at its end
DEPENDENCY_PROPS = ("Requires", "BindsTo")
REDIS_HINTS = ("REDIS_URL", "REDIS_HOST", "REDIS_PORT")


def failed_run_lines(ctx: CheckContext, unit: FleetUnit) -> list[str]:
    """The journal lines of the unit's last invocation (the failed run), else since its last
    start; [] when the journal cannot be read. Read afresh: the checks' batch may not hold it."""
    started = int(unit.props.get("ExecMainStartTimestamp") or 0)
    window = int((ctx.clock() - ctx.config.systemd.flap_window_sec) * 1e6)
    since = started - 1_000_000 if started else window
    try:
        journal = Journal()
        try:
            entries = journal.tail(unit.name, since, MAX_LINES)
        finally:
            journal.close()
    except AdapterUnavailable as exc:
        log.warning("fix: the journal of %s cannot be read: %s", unit.name, exc.reason)
        return []
    # a process that dies at once can reach journald before its invocation ID does: its lines
    # since the last start carry none and still belong to this run (its traceback among them)
    own = [e.message for e in entries if unit.invocation and e.invocation in (unit.invocation, "")]
    return own or [e.message for e in entries]


def missing_modules(lines: list[str]) -> set[str]:
    """Modules a `ModuleNotFoundError: No module named 'X'` line names."""
    return {m.group(1) for line in lines for m in MODULE_NOT_FOUND.finditer(line)}


def explains(missing: set[str], module: str) -> bool:
    """Whether the journal's missing module is `module` or a package on its way."""
    return any(module == m or module.startswith(m + ".") for m in missing)


def is_failing(unit: FleetUnit) -> bool:
    """Failed, or between two crashes of a restart loop."""
    return unit.active_state in FAILING_STATES or unit.sub_state in LOOPING_SUBSTATES


def oneshot_job(unit: FleetUnit, only: tuple[str, ...]) -> str:
    """A failed `Type=oneshot` unit is a job (flatten positions, a migration): restarting it runs
    the job again, side effects and all, and a job that overran or failed is not "transient".
    Held unless the operator names it (--only)."""
    if str(unit.props.get("Type", "")) != "oneshot" or not set(unit.names).isdisjoint(only):
        return ""
    return (
        "a oneshot job: re-running it repeats its side effects; run it by hand "
        f"(or name it: --only {unit.name})"
    )


def permanent_cause(unit: FleetUnit) -> str:
    """A set-up step systemd will fail again because what it needs is still missing, or ''.

    A restart cannot create a folder, a program, an env file or a user: such a restart is
    pointless, so it is held with the cause."""
    props = unit.props
    for check in (_workdir, _executable, _env_files, _user, _output_dirs, _rw_paths):
        why = check(unit, props)
        if why:
            return f"permanent cause: {why}; a restart fails the same way, so none is attempted"
    return ""


def _workdir(unit: FleetUnit, props: Mapping[str, object]) -> str:
    value = str(props.get("WorkingDirectory") or "")
    if not value or value.startswith("-") or value in ("~", "!~") or not value.startswith("/"):
        return ""
    path = value.lstrip("!")
    return "" if os.path.isdir(path) else f"WorkingDirectory {path} does not exist (200/CHDIR)"


def _executable(unit: FleetUnit, props: Mapping[str, object]) -> str:
    probe = exec_probe(unit)
    if probe is None or not probe.path.startswith("/"):
        return ""
    if not probe.exists:
        return f"{probe.path} is still missing (203/EXEC)"
    if not probe.executable:
        return f"{probe.path} is not executable (203/EXEC)"
    return ""


def _env_files(unit: FleetUnit, props: Mapping[str, object]) -> str:
    for entry in props.get("EnvironmentFiles") or []:  # type: ignore[attr-defined]
        pair = entry if isinstance(entry, list | tuple) else (entry, False)
        path, optional = str(pair[0]), bool(pair[1])
        if not optional and not os.path.exists(path):
            return f"EnvironmentFile {path} does not exist (Result=resources)"
    return ""


def _user(unit: FleetUnit, props: Mapping[str, object]) -> str:
    user = str(props.get("User") or "")
    if not user or user.isdigit() or props.get("DynamicUser"):
        return ""
    try:
        pwd.getpwnam(user)
    except KeyError:
        return f"User={user} does not exist (217/USER)"
    return ""


def _output_dirs(unit: FleetUnit, props: Mapping[str, object]) -> str:
    for stream in ("StandardOutput", "StandardError"):
        kind = str(props.get(stream) or "")
        target = str(props.get(f"{stream}FileToAppend") or "")
        if kind in ("append", "file", "truncate") and target.startswith("/"):
            folder = os.path.dirname(target)
            if not os.path.isdir(folder):
                return f"{stream}={kind}:{target}: folder {folder} does not exist (209/STDOUT)"
    return ""


def _rw_paths(unit: FleetUnit, props: Mapping[str, object]) -> str:
    for raw in props.get("ReadWritePaths") or []:  # type: ignore[attr-defined]
        value = str(raw)
        if value.startswith("-"):
            continue
        path = value.lstrip("+")
        if path.startswith("/") and not os.path.exists(path):
            return f"ReadWritePaths={path} does not exist (226/NAMESPACE)"
    return ""


def blocking_dependency(unit: FleetUnit, units: Mapping[str, FleetUnit], ctx: CheckContext) -> str:
    """A Requires=/BindsTo= unit that is missing or failed, or '': a restart would fail (or be
    stopped again) until that one is repaired, so the root is repaired first."""
    deps = [str(n) for p in DEPENDENCY_PROPS for n in unit.props.get(p) or []]
    states = {n: (u.load_state, u.active_state) for n, u in units.items() if n in deps}
    outside = [d for d in deps if d not in states]
    if outside:
        try:
            rows = ctx.systemd().list_units(outside)
        except AdapterUnavailable:
            rows = []
        states |= {r.name: (r.load_state, r.active_state) for r in rows}
    for dep in deps:
        load, active = states.get(dep, ("not-found", "inactive"))
        if load in ("not-found", "masked", "bad-setting", "error"):
            return (
                f"root cause first: it requires {dep}, which is {load} (dependency-missing): "
                "a restart cannot start it; install that unit or drop the Requires="
            )
        if active == "failed":
            return f"root cause first: it requires {dep}, which is failed: repair that one first"
    return ""


def uses_redis(unit: FleetUnit, cause: str, redis_unit: str) -> bool:
    """Whether the unit needs the fleet's Redis: its failure says so, it depends on Redis' unit,
    or its environment points at a Redis."""
    if cause in ("redis-unreachable", "dependency-down"):
        return True
    deps = {str(n) for p in (*DEPENDENCY_PROPS, "Wants", "After") for n in unit.props.get(p) or []}
    if redis_unit and redis_unit in deps:
        return True
    environment = [str(a) for a in unit.props.get("Environment") or []]
    return any(a.split("=", 1)[0] in REDIS_HINTS for a in environment)
