"""The one source change fix may propose: make a script's sys.path.insert point at the project
root, computed from __file__ (never a host path), proven by re-resolving the imports first.

The smallest edit wins: first the expression that produces the wrong folder, wherever the
argument takes it from (`ROOT = HERE.parents[1]` -> `parents[2]`, `"../.."` -> `".."`), but
only in an assignment whose names nothing else in the module reads (a ROOT that also finds a
config file keeps its value); else the argument itself is rewritten from __file__ (with
os.path where the script imports os, with pathlib where it imports Path). A script reached
through a symlink is never patched: Path.resolve() and the proof would disagree on its folder.
"""

from __future__ import annotations

import ast
import difflib
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from qtctl.adapters import safe_files
from qtctl.diagnosis.imports import analyse, candidates
from qtctl.diagnosis.python_units import PythonService
from qtctl.diagnosis.sys_path_eval import path_changes

MAX_LEVELS = 8  # parents[N] / '..' counts tried


@dataclass(frozen=True)
class SourcePatch:
    """A proven patch: the new text and its diff."""

    path: str
    new_text: str
    diff: str


def propose(service: PythonService, roots: Sequence[str]) -> SourcePatch | None:
    """Patch the first evaluable sys.path.insert so every import resolves; None when none does."""
    script = service.script
    if not script or os.path.realpath(script) != os.path.abspath(script):
        return None
    try:  # its text reaches the diff: never through a planted link, a FIFO or a device
        raw = safe_files.read_for_check(os.path.abspath(script), 4 * 2**20)
        source = raw.decode("utf-8")
        tree = ast.parse(source)
    except (OSError, UnicodeDecodeError, SyntaxError, ValueError, safe_files.UnsafePath):
        return None
    failing = [p for p in analyse(service, roots).problems if p.code == "QT201" and p.module]
    if not failing:
        return None
    homes = [
        os.path.normpath(h)
        for h in candidates(failing[0].module, roots, service)
        if not os.path.relpath(os.path.dirname(script), h).startswith("..")
    ]
    for call in _inserts(tree):
        for patched in _variants(source, tree, call, script, homes):
            if patched == source or _inserted(patched, call.lineno, service) not in homes:
                continue
            proof = analyse(service, roots, script_source=patched)
            if not [p for p in proof.problems if p.code == "QT201"]:
                return SourcePatch(script, patched, _diff(script, source, patched))
    return None


def _variants(
    source: str, tree: ast.Module, call: ast.Call, script: str, homes: list[str]
) -> Iterator[str]:
    """Patched texts, smallest edit first: a level in the argument's own expression, then the
    whole argument spelled from __file__."""
    for node, current in _levels(tree, call):
        floor = 1 if isinstance(node, ast.Constant) and isinstance(node.value, str) else 0
        for level in sorted(range(floor, MAX_LEVELS), key=lambda n: abs(n - current)):
            if level != current:  # a '.' among join()'s parts is no edit a person would make
                yield _replace(source, node, _spell(node, level))
    for home in homes:
        expression = _expression(tree, script, home)
        if expression:
            yield _replace(source, call.args[1], expression)


def _levels(tree: ast.Module, call: ast.Call) -> Iterator[tuple[ast.expr, int]]:
    """Each `parents[N]` index and each all-'..' string in the argument or in the assignments
    it reads, with its level, where nothing else reads the names it feeds."""
    spans = [call.args[1]]
    chain = _chain(tree, call)
    spans += [value for _, value in chain]
    names = {name for name, _ in chain}
    if any(not _within(load, spans) for load in _loads(tree, names)):
        spans = [call.args[1]]  # ROOT is used for more than sys.path: leave its value alone
    for span in spans:
        for node in ast.walk(span):
            if (
                isinstance(node, ast.Subscript)
                and isinstance(node.value, ast.Attribute)
                and node.value.attr == "parents"
                and isinstance(node.slice, ast.Constant)
                and type(node.slice.value) is int
            ):
                yield node.slice, node.slice.value
            elif isinstance(node, ast.Constant) and _ups(node.value) is not None:
                yield node, _ups(node.value) or 0


def _ups(value: object) -> int | None:
    """How many levels an all-'..' string climbs ('../..' -> 2), else None."""
    if not isinstance(value, str) or not value:
        return None
    parts = [p for p in value.strip("/").split("/") if p]
    return len(parts) if parts and all(p == ".." for p in parts) else None


def _spell(node: ast.expr, level: int) -> str:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return repr("/".join([".."] * level) or ".")
    return str(level)


def _chain(tree: ast.Module, call: ast.Call) -> list[tuple[str, ast.expr]]:
    """The top-level assignments the argument reads, transitively (the last before each use)."""
    found: list[tuple[str, ast.expr]] = []
    pending = [(call.args[1], call.lineno)]
    while pending:
        expression, line = pending.pop()
        for name in {n.id for n in ast.walk(expression) if isinstance(n, ast.Name)}:
            value = _assigned(tree, name, line)
            if value is not None and all(value is not v for _, v in found):
                found.append((name, value))
                pending.append((value, value.lineno))
    return found


def _assigned(tree: ast.Module, name: str, before: int) -> ast.expr | None:
    last = None
    for node in tree.body:
        if node.lineno >= before:
            break
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == name for t in node.targets
        ):
            last = node.value
    return last


def _loads(tree: ast.Module, names: set[str]) -> list[ast.Name]:
    return [
        n
        for n in ast.walk(tree)
        if isinstance(n, ast.Name) and n.id in names and isinstance(n.ctx, ast.Load)
    ]


def _within(node: ast.expr, spans: list[ast.expr]) -> bool:
    here = (node.lineno, node.col_offset)
    return any(
        (s.lineno, s.col_offset) <= here <= (s.end_lineno or s.lineno, s.end_col_offset or 0)
        for s in spans
    )


def _inserted(patched: str, line: int, service: PythonService) -> str:
    """The folder the insert on `line` of the patched text puts on sys.path ('' if unknown)."""
    try:
        tree = ast.parse(patched)
    except SyntaxError:
        return ""
    script = service.script or ""
    change = next(
        (c for c in path_changes(tree, patched, script, service.cwd) if c.line == line), None
    )
    return os.path.normpath(change.value) if change and change.value else ""


def _inserts(tree: ast.Module) -> list[ast.Call]:
    found = []
    for node in tree.body:
        call = node.value if isinstance(node, ast.Expr) else None
        if (
            isinstance(call, ast.Call)
            and isinstance(call.func, ast.Attribute)
            and call.func.attr == "insert"
            and "sys.path" in ast.unparse(call.func)
            and len(call.args) == 2
        ):
            found.append(call)
    return found


def _imported(tree: ast.Module, module: str, name: str = "") -> bool:
    """Whether the module imports `module` (or `name` from it) at the top level."""
    for node in tree.body:
        if isinstance(node, ast.Import) and not name:
            pairs = [(a.name, a.asname) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module == module and name:
            pairs = [(module + "." + a.name, a.asname) for a in node.names]
        else:
            continue
        if (module + ("." + name if name else ""), None) in pairs:
            return True
    return False


def _expression(tree: ast.Module, script: str, home: str) -> str:
    """`home` spelled from __file__ with what the script imports, or '' when it imports
    neither os nor pathlib's Path."""
    relative = os.path.relpath(os.path.dirname(script), home)
    levels = 0 if relative == "." else relative.count(os.sep) + 1
    if _imported(tree, "os"):
        if levels == 0:
            return "os.path.dirname(os.path.abspath(__file__))"
        ups = ", ".join(["'..'"] * levels)
        return f"os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), {ups}))"
    if _imported(tree, "pathlib", "Path"):
        return f"str(Path(__file__).absolute().parents[{levels}])"
    return ""


def _replace(source: str, node: ast.expr, text: str) -> str:
    """`source` with `node`'s text replaced by `text` (unchanged when it spans lines)."""
    lines = source.splitlines(keepends=True)
    if node.lineno != node.end_lineno or node.end_col_offset is None:
        return source  # a multi-line expression is left to a human
    row = node.lineno - 1
    raw = lines[row].encode()
    start = len(raw[: node.col_offset].decode())
    end = len(raw[: node.end_col_offset].decode())
    lines[row] = lines[row][:start] + text + lines[row][end:]
    return "".join(lines)


def _diff(path: str, old: str, new: str) -> str:
    return "".join(
        difflib.unified_diff(
            old.splitlines(keepends=True), new.splitlines(keepends=True), path, path
        )
    )
