"""Resolve a Python service's imports against the sys.path it will really have, statically.

Nothing of the service is imported or executed: files are parsed with `ast`, directories listed
(cached), and the interpreter's own path comes from an isolated probe.
"""

from __future__ import annotations

import ast
import glob
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache

from qtctl.diagnosis import module_homes
from qtctl.diagnosis.import_conditions import import_conditions, mark_conditional
from qtctl.diagnosis.interpreter import Interpreter, probe
from qtctl.diagnosis.python_source import (
    imports,
    package_for,
    parse,
    parse_text,
    relative_errors,
    unparseable,
)
from qtctl.diagnosis.python_units import PythonService
from qtctl.diagnosis.sys_path_eval import PathChange, file_path_changes, path_changes

MAX_MODULES = 400
Queued = tuple[str, ast.Module | None, str, bool]  # file, its tree, __package__, is __main__
VENV_GLOBS = ("/opt/*/venvs/*", "/opt/venvs/*", "/opt/*/venv", "/usr/lib/python3/dist-packages")


@dataclass(frozen=True)
class Entry:
    """One sys.path entry and how it got there."""

    path: str
    origin: str


@dataclass(frozen=True)
class ImportProblem:
    """An import that will fail (QT201), a shadowed package (QT203), a wrong interpreter (QT204)."""

    code: str
    module: str
    where: str
    cause: str
    condition: str = ""  # the `if` test the import runs under ('' when it always runs)


@dataclass
class Analysis:
    """The outcome for one service."""

    service: PythonService
    path: list[Entry]
    changes: list[PathChange]
    problems: list[ImportProblem] = field(default_factory=list)
    modules_checked: int = 0


def analyse(
    service: PythonService,
    code_roots: Sequence[str],
    env: Mapping[str, str] | None = None,
    script_source: str | None = None,
) -> Analysis:
    """Compute the service's sys.path and resolve its imports (transitively, first party).

    `env` and `script_source` stand in for the unit's environment and its script's text, so a
    repair can be proven before it is written.
    """
    environment = dict(env if env is not None else service.env)
    interpreter = probe(service.interpreter, environment.get("PYTHONHOME", ""))
    start = service.script or ""
    if script_source is not None:
        tree, source = parse_text(script_source, start), script_source
    else:
        tree, source = parse(start) if start else (None, "")
    changes = path_changes(tree, source, start, service.cwd) if tree else []
    path = effective_path(service, environment, interpreter, changes)
    module = resolve(service.module, [e.path for e in path]) if service.module else None
    if module and module.file.endswith(".py"):  # `-m pkg.main` changes sys.path as it runs
        changes = file_path_changes(module.file, service.cwd)
        path = effective_path(service, environment, interpreter, changes)
    result = Analysis(service, path, changes)
    if service.workdir and not os.path.isdir(service.workdir):
        result.problems.append(
            ImportProblem(
                "QT201", "", service.unit, f"WorkingDirectory {service.workdir} is missing"
            )
        )
    if interpreter.error:
        result.problems.append(ImportProblem("QT201", "", service.unit, interpreter.error))
        return result
    if start and tree is None:
        result.problems.append(ImportProblem("QT201", "", start, unparseable(start)))
        return result
    _walk(result, interpreter, code_roots, start, tree)
    return result


def effective_path(
    service: PythonService,
    env: Mapping[str, str],
    interpreter: Interpreter,
    changes: Sequence[PathChange],
) -> list[Entry]:
    """sys.path as the interpreter will build it, then the script's own top-level changes."""
    first = os.path.dirname(os.path.realpath(service.script)) if service.script else service.cwd
    path = [Entry(first, "the script's directory" if service.script else "WorkingDirectory")]
    for item in (env.get("PYTHONPATH") or "").split(":"):
        if item or "PYTHONPATH" in env:
            path.append(
                Entry(os.path.join(service.cwd, item) if item else service.cwd, "PYTHONPATH")
            )
    path += [Entry(p, "the interpreter") for p in interpreter.path]
    for change in changes:
        if change.value is None:
            continue
        entry = Entry(
            os.path.normpath(os.path.join(service.cwd, change.value)),
            f"sys.path hack at line {change.line}",
        )
        if change.position is None:
            path.append(entry)
        else:
            path.insert(min(change.position, len(path)), entry)
    return path


def _walk(
    result: Analysis, interp: Interpreter, roots: Sequence[str], start: str, tree: ast.Module | None
) -> None:
    """Breadth of first-party modules, each with the __package__ Python gives it: none for the
    script, the dotted name it was imported as for the rest (so `from .x import` resolves as
    Python resolves it, wherever the __init__.py files above it stop)."""
    own = {os.path.realpath(p) for p in interp.path}
    queue: list[Queued] = [(start, tree, "", True)] if tree else []
    if result.service.module:
        queue = _module_start(result, interp, roots)
    seen: set[tuple[str, str]] = set()
    while queue and len(seen) < MAX_MODULES:
        file, module_tree, package, main = queue.pop()
        if (file, package) in seen or module_tree is None:
            continue
        seen.add((file, package))
        _relative_errors(result, file, module_tree, package, main)
        conditions = import_conditions(module_tree, main)  # imports not certain to run
        for name, line, required in imports(module_tree, package, main):
            where = f"{file}:{line}"
            if name.split(".")[0] in interp.stdlib:
                continue
            if required:
                hit = _check(result, interp, roots, name, where)
                mark_conditional(result.problems, name, where, conditions.get(line, ""))
            else:
                found = resolve(name, [e.path for e in result.path])
                hit = None if found.failed_part else found
            if hit and hit.file and hit.file.endswith(".py") and not _under(hit.file, own):
                queue.append((hit.file, parse(hit.file)[0], package_for(name, hit.file), False))
    result.modules_checked = len({file for file, _ in seen})


def _module_start(result: Analysis, interp: Interpreter, roots: Sequence[str]) -> list[Queued]:
    """`-m a.b`: the module's file with __package__ "a" (a package: its __init__.py and its
    __main__.py, both with __package__ "a.b")."""
    module = result.service.module
    _check(result, interp, roots, module, f"-m {module}")
    found = resolve(module, [e.path for e in result.path])
    if not (found.file and found.file.endswith(".py")):
        return []
    package = found.file.endswith("__init__.py")  # -m pkg runs pkg/__main__.py as __main__
    queue: list[Queued] = [
        (found.file, parse(found.file)[0], package_for(module, found.file), not package)
    ]
    main = os.path.join(os.path.dirname(found.file), "__main__.py")
    if package and os.path.isfile(main):
        queue.append((main, parse(main)[0], module, True))
    return queue


def _relative_errors(
    result: Analysis, file: str, tree: ast.Module, package: str, main: bool
) -> None:
    for written, line, error in relative_errors(tree, package, main):
        hint = " (a script has no package: start it with -m PACKAGE.MODULE)" if not package else ""
        result.problems.append(
            ImportProblem("QT201", written, f"{file}:{line}", f"ImportError: {error}{hint}")
        )


@dataclass(frozen=True)
class Found:
    """Where a dotted name resolved, or where its resolution stopped."""

    file: str
    entry: int
    failed_part: str = ""
    top_dirs: tuple[str, ...] = ()


def resolve(name: str, path: Sequence[str]) -> Found:
    """Resolve `a.b.c` like PathFinder: first regular package/module wins, then namespaces."""
    parts = name.split(".")
    portions: list[tuple[int, str]] = []
    for index, entry in enumerate(path):
        kind, location = _locate(entry, parts[0])
        if kind == "namespace":
            portions.append((index, location))
        elif kind:
            return _descend(parts, [location] if kind == "package" else [], location, index)
    if portions:
        return _descend(parts, [p for _, p in portions], portions[0][1], portions[0][0])
    return Found("", -1, parts[0])


def _descend(parts: list[str], dirs: list[str], location: str, entry: int) -> Found:
    top = tuple(dirs)
    current = location
    for depth, part in enumerate(parts[1:], start=1):
        hits = [h for h in (_locate(d, part) for d in dirs) if h[0]]
        if not hits:
            return Found("", entry, ".".join(parts[: depth + 1]), top)
        current = hits[0][1]
        dirs = [loc for k, loc in hits if k in ("package", "namespace")]
    init = os.path.join(current, "__init__.py")
    return Found(init if os.path.isfile(init) else current, entry, "", top)


def _locate(folder: str, name: str) -> tuple[str, str]:
    names = _listing(folder)
    if name in names:
        package = os.path.join(folder, name)
        if "__init__.py" in _listing(package):
            return "package", package
        if os.path.isdir(package):
            return "namespace", package
    if f"{name}.py" in names:
        return "module", os.path.join(folder, f"{name}.py")
    if any(n.startswith(f"{name}.") and n.endswith((".so", ".pyd")) for n in names):
        return "module", os.path.join(folder, name)
    return "", ""


@lru_cache(maxsize=65536)
def _listing(folder: str) -> frozenset[str]:
    try:
        return frozenset(os.listdir(folder))
    except OSError:
        return frozenset()


def _check(
    result: Analysis, interp: Interpreter, roots: Sequence[str], name: str, where: str
) -> Found | None:
    entries = [e.path for e in result.path]
    found = resolve(name, entries)
    if not found.failed_part:
        return found
    top = name.split(".")[0]
    if any(p.module.split(".")[0] == top for p in result.problems):
        return None  # one story per top-level package
    if found.entry < 0:
        result.problems.append(_missing(result, interp, roots, name, where))
    else:
        result.problems += _incomplete(result, roots, name, found, where)
    return None


def _missing(
    result: Analysis, interp: Interpreter, roots: Sequence[str], name: str, where: str
) -> ImportProblem:
    top = name.split(".")[0]
    venvs = [v for v in other_environments(interp) if _locate(v, top)[0]]
    if venvs:
        return ImportProblem(
            "QT204",
            name,
            where,
            f"{interp.executable} has no {top}; "
            f"installed in {', '.join(venvs)}: run the unit with that venv",
        )
    homes = candidates(name, roots, result.service)
    hacks = [e for e in result.path if e.origin.startswith("sys.path hack")]
    if homes and hacks:
        return ImportProblem(
            "QT201",
            name,
            where,
            f"{hacks[0].origin} resolves to "
            f"{hacks[0].path}, which has no {top}; {top} lives in {homes[0]}",
        )
    pythonpath = result.service.env.get("PYTHONPATH")
    if homes and pythonpath:
        return ImportProblem(
            "QT201",
            name,
            where,
            f"PYTHONPATH={pythonpath} does not include {homes[0]}, where {top} lives",
        )
    if homes:
        return ImportProblem(
            "QT201",
            name,
            where,
            f"PYTHONPATH not set: {top} lives in {homes[0]}, which is not on sys.path",
        )
    return ImportProblem(
        "QT201",
        name,
        where,
        f"{top} is not installed for {interp.executable} and not in the code roots",
    )


def _incomplete(
    result: Analysis, roots: Sequence[str], name: str, found: Found, where: str
) -> list[ImportProblem]:
    top = name.split(".")[0]
    entries = [e.path for e in result.path]
    first = os.path.join(entries[found.entry], top)
    later = resolve(name, entries[found.entry + 1 :])
    missing = found.failed_part.split(".")[-1]
    if not later.failed_part:
        real = (
            os.path.dirname(os.path.dirname(later.file))
            if later.file.endswith("__init__.py")
            else os.path.dirname(later.file)
        )
        real_top = os.path.join(entries[found.entry + 1 + later.entry], top)
        return [
            ImportProblem(
                "QT201",
                name,
                where,
                f"shadowed by {first} (no {missing} there), put "
                f"on sys.path by {result.path[found.entry].origin}; the real {top} is "
                f"{real_top}",
            ),
            ImportProblem(
                "QT203",
                top,
                where,
                f"{first} shadows {real_top} on the path of {result.service.unit} ({real})",
            ),
        ]
    homes = [h for h in candidates(name, roots, result.service) if h != entries[found.entry]]
    origin = result.path[found.entry].origin
    if homes:
        return [
            ImportProblem(
                "QT201",
                name,
                where,
                f"shadowed by {first} (no {missing} there), "
                f"put first on sys.path by {origin}; the complete {top} lives in "
                f"{homes[0]}, which is not on sys.path",
            )
        ]
    return [ImportProblem("QT201", name, where, f"{first} has no {missing}")]


def candidates(name: str, roots: Sequence[str], service: PythonService) -> list[str]:
    """Directories under the code roots (or the WorkingDirectory) that would resolve `name`:
    the roots, the WorkingDirectory and the script's folders, else folders below a root."""
    places = [*roots, service.cwd]
    if service.script:
        folder = os.path.dirname(service.script)
        while folder not in ("/", ""):
            places.append(folder)
            folder = os.path.dirname(folder)
    homes = []
    for place in dict.fromkeys(os.path.normpath(p) for p in places):
        if os.path.isdir(place) and not resolve(name, [place]).failed_part:
            homes.append(place)
    return homes or module_homes.below_roots(
        name, roots, lambda n, d: not resolve(n, [d]).failed_part
    )


def other_environments(interp: Interpreter) -> list[str]:
    """site-packages of the other Python environments on the host."""
    own = {os.path.realpath(p) for p in interp.path}
    found = []
    for pattern in VENV_GLOBS:
        for base in sorted(glob.glob(pattern)):
            sites = glob.glob(os.path.join(base, "lib", "python3*", "site-packages")) or [base]
            found += [s for s in sites if os.path.realpath(s) not in own and os.path.isdir(s)]
    return found


def _under(file: str, dirs: set[str]) -> bool:
    real = os.path.realpath(file)
    return any(real.startswith(d + os.sep) for d in dirs)


def clear_caches() -> None:
    """Forget directory listings (they change when code is deployed or repaired)."""
    _listing.cache_clear()
