"""Proof that an import-path repair does no harm to any unit that runs the same code.

A repair (a PYTHONPATH drop-in or a source patch) is proven when, for the unit and every other
unit that runs the same script or module: everything that resolved before still resolves to the
same file, and the folder the repair puts on sys.path brings no top-level name that a stdlib,
third-party or other first-party module of that name already answers (the incident's shadowing:
a `microservices/` first on sys.path answering `ai_engine` with a stale copy).
"""

from __future__ import annotations

import ast
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from qtctl.diagnosis.imports import Analysis, analyse, resolve
from qtctl.diagnosis.interpreter import probe
from qtctl.diagnosis.python_source import imports, package_of, parse, parse_text
from qtctl.diagnosis.python_units import PythonService

MAX_MODULES = 200  # first-party modules followed per service when comparing resolutions


@dataclass(frozen=True)
class Change:
    """What a repair stands in for: the environment, or the script's text."""

    env: Mapping[str, str] | None = None
    script_source: str | None = None


def sharing(service: PythonService, services: Sequence[PythonService]) -> list[PythonService]:
    """`service` and every other unit that runs the same script (or the same -m module from the
    same WorkingDirectory): a patch of that file changes them all."""

    def key(s: PythonService) -> tuple[str, str]:
        if s.script:
            return os.path.realpath(s.script), ""
        return s.module, os.path.realpath(s.cwd)

    mine = key(service)
    return [service, *(s for s in services if s.unit != service.unit and key(s) == mine)]


def harm(service: PythonService, roots: Sequence[str], change: Change) -> str:
    """Why the change would hurt `service` (an import moved or lost, a name shadowed), or ''."""
    before = analyse(service, roots)
    after = analyse(service, roots, change.env, change.script_source)
    moved = _moved(before, after, change.script_source)
    if moved:
        return moved
    return _shadowing(service, before, after)


def _moved(before: Analysis, after: Analysis, script_source: str | None) -> str:
    old_path = [e.path for e in before.path]
    new_path = [e.path for e in after.path]
    for name in _imported_names(before, script_source):
        was, now = resolve(name, old_path), resolve(name, new_path)
        if was.failed_part:
            continue  # it did not resolve before: the repair may only make it resolve
        if now.failed_part:
            return f"import {name} resolves today ({was.file}) and would not any more"
        if os.path.realpath(now.file) != os.path.realpath(was.file):
            return f"import {name} would come from {now.file} instead of {was.file}"
    return ""


def _shadowing(service: PythonService, before: Analysis, after: Analysis) -> str:
    """A folder new on sys.path ahead of others whose top-level names others already provide."""
    old = {os.path.realpath(e.path) for e in before.path}
    interpreter = probe(service.interpreter, service.env.get("PYTHONHOME", ""))
    for index, entry in enumerate(after.path):
        if os.path.realpath(entry.path) in old:
            continue
        earlier = [e.path for e in after.path[:index]]
        later = [e.path for e in after.path[index + 1 :]]
        for name in sorted(_top_level_names(entry.path)):
            if not resolve(name, earlier).failed_part:
                continue  # an earlier entry still wins: nothing changes for this name
            if name in interpreter.stdlib:
                return f"{entry.path} would shadow the standard library's {name}"
            found = resolve(name, later)
            if not found.failed_part:
                return f"{entry.path} would shadow {name} (today from {found.file})"
    return ""


def _top_level_names(folder: str) -> set[str]:
    """Importable top-level names in a folder: packages, modules, extension modules."""
    try:
        entries = os.listdir(folder)
    except OSError:
        return set()
    names = set()
    for entry in entries:
        path = os.path.join(folder, entry)
        if entry.endswith(".py"):
            names.add(entry[:-3])
        elif os.path.isfile(os.path.join(path, "__init__.py")):
            names.add(entry)
        elif entry.endswith(".so"):
            names.add(entry.split(".")[0])
    return {n for n in names if n.isidentifier()}


def _imported_names(analysis: Analysis, script_source: str | None) -> list[str]:
    """Every module-level import of the script and of the first-party modules it reaches
    (resolved on the current sys.path), in a stable order."""
    service = analysis.service
    path = [e.path for e in analysis.path]
    start = service.script
    queue: list[tuple[ast.Module | None, str]] = []
    if start:
        tree = parse_text(script_source, start) if script_source is not None else parse(start)[0]
        queue.append((tree, ""))
    names: list[str] = [service.module] if service.module else []
    if service.module:
        found = resolve(service.module, path)
        if found.file.endswith(".py"):
            queue.append((parse(found.file)[0], package_of(found.file)))
    seen: set[str] = set()
    while queue and len(seen) < MAX_MODULES:
        tree, package = queue.pop()
        if tree is None:
            continue
        for name, _, required in imports(tree, package):
            if not required or name in names:
                continue
            names.append(name)
            hit = resolve(name, path)
            if hit.file.endswith(".py") and hit.file not in seen and _first_party(hit.file):
                seen.add(hit.file)
                queue.append((parse(hit.file)[0], package_of(hit.file)))
    return names


def _first_party(file: str) -> bool:
    return "-packages" not in file and not file.startswith(("/usr/lib/python", "/usr/local/lib"))
