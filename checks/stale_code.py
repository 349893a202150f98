"""QT107: a running unit whose code, interpreter or unit file changed after its process started.

The operator deployed but never restarted (or restarted the wrong unit): the process still runs
the old code. Evidence, per active running fleet service: ExecMainStartTimestamp against the
modification time of its script, the first-party modules it imports (the import analysis's
sys.path, walked under the code roots), its interpreter (the venv's link and pyvenv.cfg) and its
unit files (FragmentPath, DropInPaths). Files are opened through safe_files (no link planted by
the fleet user is followed); only their times are read.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Sequence

from qtctl.adapters import safe_files
from qtctl.diagnosis.fleet import FleetUnit, fleet_python_services, fleet_units, run_analysis
from qtctl.diagnosis.imports import resolve
from qtctl.diagnosis.live_settings import only_live_settings
from qtctl.diagnosis.python_source import imports, package_of, parse
from qtctl.diagnosis.python_units import PythonService
from qtctl.engine.check import Check
from qtctl.engine.context import CheckContext
from qtctl.engine.findings import CodeDoc, Finding, Severity
from qtctl.errors import QtctlError

SLACK_SEC = 1.0  # a file written in the second the process started is not newer than it
MAX_MODULES = 400
MAX_LISTED = 8
RUNTIME_UNIT_DIRS = ("/run/",)

STALE_CODE = CodeDoc(
    code="QT107",
    title="running unit runs stale code",
    severity="warning",
    meaning="A fleet unit is active and running, but its main process started before its "
    "script, a first-party module it imports, its interpreter (venv) or its unit file "
    "(FragmentPath, DropInPaths) last changed: a deploy without a restart, or a restart of "
    "the wrong unit. The finding lists the files and their times. A unit file or drop-in "
    "that sets only resource-control keys (MemoryMax=, CPUQuota=, ...) does not count: systemd "
    "applies those to the running unit at daemon-reload.",
    why="The service still runs the old code: the fix that was deployed is not live, and the "
    "next crash or reboot switches to untested new code at a random moment.",
    fix="Restart the unit (`systemctl restart UNIT`, after `systemctl daemon-reload` when its "
    "unit file changed) at a moment of your choosing.",
)


def run(ctx: CheckContext) -> Iterator[Finding]:
    """Report running units whose files changed after their main process started."""
    running = [u for u in fleet_units(ctx) if _running(u)]
    if not running:
        return
    services = {s.unit: s for s in fleet_python_services(ctx)}
    roots = ctx.config.fleet.code_roots
    for unit in running:
        started = int(unit.props.get("ExecMainStartTimestamp") or 0) / 1e6
        newer = [
            (path, mtime)
            for path in _files(ctx, unit, services.get(unit.name), roots)
            if (mtime := _shared_mtime(ctx, path)) > started + SLACK_SEC
            and not _applied_live(unit, path)
        ]
        if newer:
            yield _finding(unit, started, sorted(newer, key=lambda item: -item[1]))


def _applied_live(unit: FleetUnit, path: str) -> bool:
    """A unit file of resource-control keys only (MemoryMax=, CPUQuota=): systemd applies it to
    the running unit at daemon-reload (docs/precision.md), nothing a restart would bring in."""
    unit_files = [unit.props.get("FragmentPath"), *(unit.props.get("DropInPaths") or [])]
    return path in map(str, unit_files) and only_live_settings(path)


def _running(unit: FleetUnit) -> bool:
    return (
        unit.name.endswith(".service")
        and unit.active_state == "active"
        and unit.sub_state == "running"
        and bool(unit.props.get("ExecMainStartTimestamp"))
    )


def _finding(unit: FleetUnit, started: float, newer: list[tuple[str, float]]) -> Finding:
    shown = [f"{path} changed {_when(mtime)}" for path, mtime in newer[:MAX_LISTED]]
    more = len(newer) - len(shown)
    return Finding(
        code=STALE_CODE.code,
        severity=Severity.WARNING,
        subject=unit.name,
        message=f"runs stale code: its process started {_when(started)}, before "
        f"{newer[0][0]} changed ({_when(newer[0][1])})"
        + (f" and {len(newer) - 1} more file(s)" if len(newer) > 1 else ""),
        cause="stale-code",
        detail=(*shown, *((f"... and {more} more",) if more > 0 else ())),
        fix_hint="restart the unit when convenient"
        + (
            " (daemon-reload first: its unit file changed)"
            if _unit_file_changed(unit, newer)
            else ""
        ),
    )


def _files(
    ctx: CheckContext, unit: FleetUnit, service: PythonService | None, roots: Sequence[str]
) -> list[str]:
    """The files whose change the running process does not see."""
    found = [str(unit.props.get("FragmentPath") or "")]
    found += [str(p) for p in unit.props.get("DropInPaths") or []]
    # generators rewrite /run/systemd/generator* at every daemon-reload, and runtime drop-ins
    # (set-property --runtime) apply to the running process: neither makes its code stale
    found = [f for f in found if not f.startswith(RUNTIME_UNIT_DIRS)]
    program = unit.exec_path
    found += [program, *_venv_files(program)]
    found += [a for a in unit.exec_argv[1:] if a.startswith("/") and _under(a, roots)]
    if service is not None:
        found += _modules(ctx, service, roots)
    return [f for f in dict.fromkeys(found) if f]


def _venv_files(program: str) -> list[str]:
    """A venv interpreter's pyvenv.cfg (rewritten when the venv is recreated)."""
    cfg = os.path.join(os.path.dirname(os.path.dirname(program)), "pyvenv.cfg")
    return [cfg] if os.path.basename(program).startswith("python") else []


def _modules(ctx: CheckContext, service: PythonService, roots: Sequence[str]) -> list[str]:
    """The service's script and the first-party modules it imports, transitively (the walk is
    shared, once per run, by the services of the same script or module and sys.path)."""
    try:
        path = [entry.path for entry in run_analysis(ctx, service).path]
    except (OSError, QtctlError, ValueError):
        return [service.script] if service.script else []
    key = f"stale_code:{service.script}\0{service.module}\0{path}\0{list(roots)}"
    return ctx.memo(key, lambda: _walk(service, path, roots))  # type: ignore[no-any-return]


def _walk(service: PythonService, path: list[str], roots: Sequence[str]) -> list[str]:
    queue = [service.script] if service.script else []
    if service.module:
        found = resolve(service.module, path)
        queue += [found.file] if found.file.endswith(".py") else []
    seen: list[str] = []
    while queue and len(seen) < MAX_MODULES:
        file = queue.pop()
        if file in seen:
            continue
        seen.append(file)
        tree = parse(file)[0]
        for name, _line, _required in imports(tree, package_of(file)) if tree else ():
            hit = resolve(name, path).file
            if hit.endswith(".py") and _under(hit, roots) and hit not in seen:
                queue.append(hit)
    return seen


def _under(path: str, roots: Sequence[str]) -> bool:
    return any(path.startswith(root.rstrip("/") + "/") for root in roots if root)


def _shared_mtime(ctx: CheckContext, path: str) -> float:
    """`_mtime`, once per run and file: the instances of a service share their modules."""
    return ctx.memo(f"mtime:{path}", lambda: _mtime(path))  # type: ignore[no-any-return]


def _mtime(path: str) -> float:
    """The file's modification time through an fd safe_files opened (0 when it cannot be
    opened that way); a link (a venv's python) by its own time, never followed."""
    try:
        if os.path.islink(path):
            return os.lstat(path).st_mtime
        with safe_files.open_plain(path) as fd:
            return os.fstat(fd).st_mtime
    except (OSError, QtctlError):
        return 0.0


def _unit_file_changed(unit: FleetUnit, newer: list[tuple[str, float]]) -> bool:
    unit_files = {
        str(unit.props.get("FragmentPath") or ""),
        *map(str, unit.props.get("DropInPaths") or []),
    }
    return any(path in unit_files for path, _ in newer)


def _when(seconds: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(seconds))


CHECK = Check(name="stale_code", codes=(STALE_CODE,), run=run)
