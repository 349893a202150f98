"""QT301/QT303 on a checkout: the scripts unit files execute (mapped onto the tree by
`lint.path_map`) with CRLF or a BOM before the shebang, or run directly without the exec bit."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass

from qtctl.adapters import safe_walk
from qtctl.diagnosis.exec_targets import SHELLS
from qtctl.diagnosis.line_endings import classify
from qtctl.diagnosis.unit_instances import is_template
from qtctl.diagnosis.unit_lint import UnitView
from qtctl.diagnosis.unit_load import working_directory
from qtctl.engine.findings import Finding, Severity
from qtctl.formats.model import Location, shown_path
from qtctl.lint.tree import PathMap

MAX_SCRIPT_BYTES = 50 * 2**20


@dataclass(frozen=True)
class Executed:
    """An ExecStart= script under a mapped deploy path: where it is in the checkout."""

    deploy: str
    path: str  # in the checkout ('' when the checkout does not have it)
    direct: bool  # the program itself (needs +x), not the script an interpreter runs


def executed(view: UnitView, paths: PathMap) -> list[Executed]:
    """The ExecStart= scripts under a mapped path; one the checkout lacks only when its
    command has no `-` prefix (systemd then fails the unit; with it, it starts anyway)."""
    workdir = working_directory(view.loaded)
    found = []
    for command in view.loaded.commands("ExecStart"):
        base = os.path.basename(command.path)
        if base in SHELLS or base.startswith("python"):
            script = _script_argument(list(command.argv[1:]), workdir)
            direct = False
        else:
            script, direct = command.path, True
        mapped = paths.to_tree(script) if script.startswith("/") else ""
        if mapped and os.path.isfile(mapped):
            found.append(Executed(script, mapped, direct))
        elif mapped and not os.path.lexists(mapped) and "-" not in command.prefixes:
            found.append(Executed(script, "", direct))
    return found


def _script_argument(args: list[str], workdir: str) -> str:
    """The script an interpreter runs, its options read as CPython reads them (`-W ARG`,
    `-X dev`, `-uB`); none for `-m`/`-c` (as `exec_targets` reads it on a host)."""
    from qtctl.diagnosis.interpreter import python_command

    arg = python_command(args).script
    if not arg:
        return ""
    return arg if os.path.isabs(arg) else os.path.join(workdir or "/", arg)


def script_findings(views: list[UnitView], paths: PathMap) -> Iterator[tuple[Finding, Location]]:
    """One finding per unit and script it runs."""
    for view in views:
        if is_template(view.name):
            continue
        for target in executed(view, paths):
            if target.path:
                yield from _script(view.name, target.path, target.direct)
            else:
                yield _missing(view, target)


def _missing(view: UnitView, target: Executed) -> tuple[Finding, Location]:
    message = (
        f"ExecStart={target.deploy} is not in the checkout: the unit cannot start (203/EXEC)"
        if target.direct
        else f"{target.deploy}, the script ExecStart= runs, is not in the checkout"
    )
    finding = Finding(
        "QT104",
        Severity.ERROR,
        view.name,
        message,
        cause="exec-missing",
        fix_hint="add the script, or fix the path (lint.path_map)",
    )
    return finding, Location(shown_path(view.fragment))


def _script(unit: str, script: str, direct: bool) -> Iterator[tuple[Finding, Location]]:
    data = safe_walk.read_head(script, MAX_SCRIPT_BYTES)
    endings = classify(data)
    where = shown_path(script)
    if endings.needs_fix:
        what = (
            f"CRLF line endings ({endings.crlf} of {endings.lf} lines)"
            if endings.has_crlf
            else "a UTF-8 BOM before the shebang"
        )
        line = data[: data.find(b"\r\n")].count(b"\n") + 1 if endings.has_crlf else 1
        yield (
            Finding(
                "QT301",
                Severity.ERROR,
                unit,
                f"{where} has {what}: the unit fails to run it",
                cause="crlf",
                fix_hint="convert to LF (`sed -i 's/\\r$//' FILE`)",
            ),
            Location(where, line),
        )
    elif direct and data.startswith(b"#!") and not os.access(script, os.X_OK):
        yield (
            Finding(
                "QT303",
                Severity.ERROR,
                unit,
                f"{where} is run directly but is not executable (203/EXEC)",
                cause="no-exec-bit",
                fix_hint=f"chmod +x {where} (and `git add --chmod=+x`)",
            ),
            Location(where),
        )
