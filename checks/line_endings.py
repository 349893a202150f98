"""QT301-QT303: CRLF in executed scripts and source files, and scripts that cannot be executed."""

from __future__ import annotations

import os
import shutil
from collections import Counter
from collections.abc import Iterator

from qtctl.adapters import safe_walk
from qtctl.diagnosis.code_scan import EXECUTED_EXTENSIONS, CodeScan, FileEndings, scan
from qtctl.diagnosis.exec_targets import (
    ExecTarget,
    cr_breaks,
    exec_targets,
    shebang,
    working_directories,
)
from qtctl.diagnosis.fleet import loaded_units
from qtctl.diagnosis.line_endings import classify
from qtctl.engine.check import Check
from qtctl.engine.context import CheckContext
from qtctl.engine.facts import FileFacts
from qtctl.engine.findings import CodeDoc, Finding, Severity

MAX_SCRIPT_BYTES = 50 * 2**20  # the code scan's default code.max_file_mb
SUMMARY_ROWS = 15
SYSTEM_DIRS = (
    "/usr",
    "/etc",
    "/var",
    "/proc",
    "/sys",
    "/dev",
    "/run",
    "/tmp",
    "/boot",
    "/lib",
    "/bin",
    "/sbin",
)

CRLF_EXECUTED = CodeDoc(
    code="QT301",
    title="CRLF or BOM in an executed script",
    severity="error",
    meaning="A script the kernel or a shell reads for a fleet unit has CRLF line endings or a "
    "UTF-8 BOM before the shebang: a program run directly (its shebang is read by the kernel), a "
    "script passed to bash/sh, or a file a `sh -c` line sources, in ExecStartPre=, ExecStart= or "
    "ExecStartPost=. A Python script run through its interpreter (`python3 main.py`, `-m`, "
    "`uv run`, `env python3`) is not one: Python reads CRLF source as LF, so a CRLF .py there "
    "is at most QT302.",
    why="The kernel looks for `/bin/bash\\r` or `env` for `python3\\r` (203/EXEC or 127, 'No "
    "such file or directory') and bash runs commands ending in \\r (`$'\\r': command not "
    "found`): the unit fails or misbehaves.",
    fix="Convert to LF (`sed -i 's/\\r$//' FILE`, or `qtctl fix --apply`, which keeps mode and "
    "owner and backs the original up), and configure git/editors to keep LF.",
    repair=FileFacts,
)
CRLF_SOURCES = CodeDoc(
    code="QT302",
    title="CRLF or mixed line endings in source files",
    severity="warning/info",
    meaning="Files under the code roots with CRLF (or mixed) line endings: warning for .py, .sh "
    "and unit files, info for other text files; binaries are never reported. Large counts are "
    "summarised per directory and extension; the JSON detail lists every file.",
    why="Such files break as soon as something executes or installs them, and produce noisy diffs.",
    fix="Convert to LF (`qtctl fix --apply --select QT302`) and add `* text=auto eol=lf` to "
    ".gitattributes.",
    repair=FileFacts,
)
NOT_EXECUTABLE = CodeDoc(
    code="QT303",
    title="ExecStart script not executable",
    severity="error",
    meaning="A script a unit runs directly has no exec bit, or its shebang names an "
    "interpreter that does not exist on this host.",
    why="systemd fails the unit with 203/EXEC.",
    fix="`chmod +x SCRIPT`, fix the shebang, or run it through its interpreter in ExecStart=.",
)


def run(ctx: CheckContext) -> Iterator[Finding]:
    """Executed scripts first (they break units), then the code roots' sources."""
    for target in exec_targets(ctx.config.fleet.units, loaded_units(ctx)):
        yield from _executed(target)
    result = code_scan(ctx)
    configured = "fleet.code_roots" in ctx.config.sources  # the default root is optional
    yield from _sources(result, report_missing=configured)


def code_scan(ctx: CheckContext) -> CodeScan:
    """The one pass over the code roots of this run (shared with QT202)."""
    roots = _roots(ctx)
    limit = int(ctx.config.code.max_file_mb * 2**20)
    code = ctx.config.code
    return ctx.memo(  # type: ignore[no-any-return]
        "code_scan", lambda: scan(roots, limit, code.max_files, frozenset(code.exclude_dirs))
    )


def _roots(ctx: CheckContext) -> list[str]:
    """fleet.code_roots plus the WorkingDirectory of every fleet unit, nested ones merged."""
    units = loaded_units(ctx)
    workdirs = [d for d in working_directories(ctx.config.fleet.units, units) if _project_dir(d)]
    roots = list(
        dict.fromkeys(os.path.abspath(r) for r in [*ctx.config.fleet.code_roots, *workdirs])
    )
    return [r for r in roots if not any(r != o and r.startswith(o + "/") for o in roots)]


def _project_dir(path: str) -> bool:
    """A unit's WorkingDirectory worth scanning: not / nor a system-wide directory."""
    real = os.path.realpath(path)
    return os.path.isdir(real) and real.count("/") >= 2 and not real.startswith(SYSTEM_DIRS)


def _executed(target: ExecTarget) -> Iterator[Finding]:
    script = target.script
    if script and target.crlf_breaks_it and os.path.isfile(script):
        data = safe_walk.read_head(script, MAX_SCRIPT_BYTES)  # never a FIFO
        endings = classify(data)
        if endings.needs_fix and cr_breaks(target, data):
            what = (
                f"CRLF line endings ({endings.crlf} of {endings.lf} lines)"
                if endings.has_crlf
                else "a UTF-8 BOM before the shebang"
            )
            yield Finding(
                CRLF_EXECUTED.code,
                Severity.ERROR,
                target.unit,
                f"{script} has {what}",
                cause="crlf",
                detail=(script,),
                fix_hint="convert to LF, keeping mode and owner",
                facts=FileFacts((script,)),
            )
            return  # its shebang problem is this one
    if target.direct and script and not target.optional:  # `-`: systemd starts it anyway
        yield from _not_runnable(target)


def _not_runnable(target: ExecTarget) -> Iterator[Finding]:
    path = target.script
    if not os.access(path, os.X_OK):
        yield Finding(
            NOT_EXECUTABLE.code,
            Severity.ERROR,
            target.unit,
            f"{path} is run directly but is not executable",
            cause="no-exec-bit",
            fix_hint=f"chmod +x {path}",
        )
        return
    words = shebang(path)
    if not words:
        return
    interpreter = words[1] if os.path.basename(words[0]) == "env" and len(words) > 1 else words[0]
    found = shutil.which(interpreter) if "/" not in interpreter else os.path.exists(interpreter)
    if not found:
        yield Finding(
            NOT_EXECUTABLE.code,
            Severity.ERROR,
            target.unit,
            f"{path}: shebang interpreter {interpreter} does not exist on this host",
            cause="bad-shebang",
            fix_hint="fix the shebang or install the interpreter",
        )


def _sources(result: CodeScan, report_missing: bool) -> Iterator[Finding]:
    executed = [f for f in result.crlf if f.ext in EXECUTED_EXTENSIONS]
    other = [f for f in result.crlf if f.ext not in EXECUTED_EXTENSIONS]
    for files, severity, label in (
        (executed, Severity.WARNING, ".py/.sh/unit files"),
        (other, Severity.INFO, "other text files"),
    ):
        if files:
            yield _summary(files, severity, label, result)
    for root in result.missing_roots if report_missing else ():
        yield Finding(
            CRLF_SOURCES.code,
            Severity.INFO,
            root,
            "code root does not exist: skipped",
            cause="missing-root",
            fix_hint="fix fleet.code_roots",
        )
    if result.skipped:
        yield Finding(
            CRLF_SOURCES.code,
            Severity.INFO,
            "code roots",
            f"{len(result.skipped)} path(s) skipped while scanning",
            cause="skipped",
            detail=tuple(f"{path}: {why}" for path, why in result.skipped),
        )


def _summary(files: list[FileEndings], severity: Severity, label: str, result: CodeScan) -> Finding:
    mixed = sum(f.endings.mixed for f in files)
    groups = Counter((os.path.dirname(f.path), f.ext or "(none)") for f in files)
    rows = [f"{count:6d} {ext:8} {folder}" for (folder, ext), count in groups.most_common()]
    shown = rows[:SUMMARY_ROWS] + (
        [f"   ... {len(rows) - SUMMARY_ROWS} more folders"] if len(rows) > SUMMARY_ROWS else []
    )
    return Finding(
        code=CRLF_SOURCES.code,
        severity=severity,
        subject=", ".join(result.roots),
        message=f"{len(files)} {label} with CRLF line endings ({mixed} mixed) among "
        f"{result.files_seen} files scanned",
        cause="crlf-sources" if severity == Severity.WARNING else "crlf-other",
        detail=(*shown, *(f.path for f in files)),
        fix_hint="`qtctl fix --apply --select QT302` converts them to LF",
        facts=FileFacts(tuple(f.path for f in files)),
    )


CHECK = Check(name="line_endings", codes=(CRLF_EXECUTED, CRLF_SOURCES, NOT_EXECUTABLE), run=run)
