"""QT201/QT203 and QT703 on a checkout: the imports of each Python service a unit starts,
resolved against the tree (WorkingDirectory, script, PYTHONPATH and EnvironmentFile= mapped by
`lint.path_map`), and the env files those units read.

Only first-party imports are judged: a package the tree has somewhere. Third-party ones depend
on the host's venv, which a CI runner does not have, so saying they fail would be false."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator, Sequence

from qtctl.adapters import safe_files
from qtctl.diagnosis.env_file import environment, misreads, refusal
from qtctl.diagnosis.imports import ImportProblem, analyse, clear_caches, resolve
from qtctl.diagnosis.interpreter import python_command
from qtctl.diagnosis.python_units import MAX_ENV_BYTES, PythonService
from qtctl.diagnosis.unit_instances import is_template
from qtctl.diagnosis.unit_lint import UnitView
from qtctl.diagnosis.unit_load import working_directory
from qtctl.engine.findings import Finding, Severity
from qtctl.formats.model import Location, shown_path
from qtctl.lint.scripts import _script_argument
from qtctl.lint.tree import PathMap

SEVERITY = {"QT201": Severity.ERROR, "QT203": Severity.WARNING}


def mapped_service(view: UnitView, paths: PathMap) -> PythonService | None:
    """The service as it would start from the checkout; None when it is not a Python service
    or the tree does not hold its script and folder."""
    unit = view.loaded
    python = [
        c for c in unit.commands("ExecStart") if os.path.basename(c.path).startswith("python")
    ]
    workdir = working_directory(unit)
    tree_dir = paths.to_tree(workdir) if workdir.startswith("/") else ""
    if not python or (workdir and not tree_dir):
        return None
    args = list(python[0].argv[1:])
    module = python_command(args).module  # options read as CPython reads them (-W ARG, -uB)
    script = "" if module else _script_argument(args, workdir)
    mapped = paths.to_tree(script) if script else ""
    if not module and not (mapped and os.path.isfile(mapped)):
        return None
    env = unit.environment()
    for path, _, _ in unit.environment_files():
        if paths.to_tree(path):
            env.update(environment(_read_env(paths.to_tree(path))[0]))
    if env.get("PYTHONPATH"):
        env["PYTHONPATH"] = ":".join(paths.to_tree(p) or p for p in env["PYTHONPATH"].split(":"))
    return PythonService(view.name, sys.executable, mapped, module, tree_dir, env)


def import_findings(
    views: list[UnitView], paths: PathMap, roots: Sequence[str]
) -> Iterator[tuple[Finding, Location]]:
    """One finding per first-party import that fails (and package shadowed)."""
    clear_caches()
    tops = [os.path.abspath(r) for r in roots if os.path.isdir(r)]
    for view in views:
        service = None if is_template(view.name) else mapped_service(view, paths)
        if service is None:
            continue
        for problem in analyse(service, tops).problems:
            if problem.code in SEVERITY and _first_party(problem, service, tops):
                yield _finding(view.name, problem)


def _first_party(problem: ImportProblem, service: PythonService, roots: list[str]) -> bool:
    if not problem.module:
        return problem.where.endswith(".py")  # a script that does not parse
    top = problem.module.split(".")[0]
    places = [*roots, service.cwd]
    return any(not resolve(top, [p]).failed_part for p in places) or _in_tree(top, roots)


def _in_tree(top: str, roots: list[str]) -> bool:
    """The package sits one or two folders down (a src/ layout, a service folder)."""
    for root in roots:
        for entry in os.scandir(root):
            if entry.is_dir(follow_symlinks=False) and not resolve(top, [entry.path]).failed_part:
                return True
    return False


def _finding(unit: str, problem: ImportProblem) -> tuple[Finding, Location]:
    path, _, line = problem.where.rpartition(":")
    location = (
        Location(shown_path(path), int(line))
        if line.isdigit()
        else Location(shown_path(problem.where))
    )
    what = f"import {problem.module} will fail: " if problem.code == "QT201" else ""
    return Finding(
        problem.code,
        SEVERITY[problem.code],
        unit,
        f"{what}{problem.cause}",
        cause="import-error" if problem.code == "QT201" else "shadowed",
        fix_hint="set PYTHONPATH in the unit, or remove the sys.path hack",
    ), location


def env_findings(views: list[UnitView], paths: PathMap) -> Iterator[tuple[Finding, Location]]:
    """Env files the units name and the tree holds: refused by systemd, or lines it misreads."""
    seen: set[str] = set()
    for view in views:
        for path, optional, _ in view.loaded.environment_files():
            mapped = paths.to_tree(path)
            if not mapped or mapped in seen or not os.path.isfile(mapped):
                continue
            seen.add(mapped)
            yield from _env_file(view.name, mapped, optional)


def _read_env(path: str) -> tuple[bytes, str]:
    """An env file of the checkout and '' , or b'' and why it was not read: a symlink the
    checkout's owner could have planted is never followed (its target may be root's only),
    nor is a FIFO or device read (`safe_files.read_for_check`)."""
    try:
        return safe_files.read_for_check(os.path.abspath(path), MAX_ENV_BYTES + 1), ""
    except safe_files.UnsafePath as exc:
        return b"", str(exc).partition(": ")[2] or str(exc)
    except OSError as exc:
        return b"", str(exc.strerror)


def _env_file(unit: str, path: str, optional: bool) -> Iterator[tuple[Finding, Location]]:
    text, unread = _read_env(path)
    where = shown_path(path)
    if unread:
        finding = Finding(
            "QT703", Severity.WARNING, where, f"not read: {unread}", cause="unsafe-path"
        )
        yield finding, Location(where)
        return
    refused = refusal(text)
    if refused is not None:
        severity = Severity.WARNING if optional else Severity.ERROR
        yield (
            Finding(
                "QT703",
                severity,
                where,
                f"systemd refuses this file: {refused} ({unit} gets none of its variables)",
                cause="rejected-by-systemd",
            ),
            Location(where),
        )
        return
    for misread in misreads(text):
        yield (
            Finding(
                "QT703",
                Severity.WARNING,
                where,
                misread.what,
                cause=misread.kind,
                fix_hint="see qtctl explain QT703",
            ),
            Location(where, misread.line),
        )
