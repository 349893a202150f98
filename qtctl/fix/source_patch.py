"""The one source change fix may propose: make a script's sys.path.insert point at the project
root, computed from __file__ (never a host path), proven by re-resolving the imports first."""

from __future__ import annotations

import ast
import difflib
import os
from collections.abc import Sequence
from dataclasses import dataclass

from qtctl.adapters import safe_files
from qtctl.diagnosis.imports import analyse, candidates
from qtctl.diagnosis.python_units import PythonService


@dataclass(frozen=True)
class SourcePatch:
    """A proven patch: the new text and its diff."""

    path: str
    new_text: str
    diff: str


def propose(service: PythonService, roots: Sequence[str]) -> SourcePatch | None:
    """Patch the first evaluable sys.path.insert so every import resolves; None when none does."""
    if not service.script:
        return None
    try:  # its text reaches the diff: never through a planted link, a FIFO or a device
        raw = safe_files.read_for_check(os.path.abspath(service.script), 4 * 2**20)
        source = raw.decode("utf-8")
    except (OSError, UnicodeDecodeError, safe_files.UnsafePath):
        return None
    failing = [p for p in analyse(service, roots).problems if p.code == "QT201" and p.module]
    if not failing:
        return None
    tree = ast.parse(source)
    if not _imports_os(tree):
        return None  # the replacement spells the root with os.path
    homes = [
        h
        for h in candidates(failing[0].module, roots, service)
        if not os.path.relpath(os.path.dirname(service.script), h).startswith("..")
    ]
    for call in _inserts(tree):
        for home in homes:
            patched = _replace_argument(source, call, _expression(service.script, home))
            proof = analyse(service, roots, script_source=patched)
            if patched != source and not [p for p in proof.problems if p.code == "QT201"]:
                return SourcePatch(service.script, patched, _diff(service.script, source, patched))
    return None


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


def _imports_os(tree: ast.Module) -> bool:
    return any(
        isinstance(n, ast.Import) and any(a.name == "os" for a in n.names) for n in tree.body
    )


def _expression(script: str, home: str) -> str:
    """`home` as a path relative to the script's own directory, spelled from __file__."""
    relative = os.path.relpath(os.path.dirname(script), home)
    levels = 0 if relative == "." else relative.count(os.sep) + 1
    if levels == 0:
        return "os.path.dirname(os.path.abspath(__file__))"
    ups = ", ".join(["'..'"] * levels)
    return f"os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), {ups}))"


def _replace_argument(source: str, call: ast.Call, expression: str) -> str:
    argument = call.args[1]
    lines = source.splitlines(keepends=True)
    if argument.lineno != argument.end_lineno or argument.end_col_offset is None:
        return source  # a multi-line argument is left to a human
    row = argument.lineno - 1
    raw = lines[row].encode()
    start = len(raw[: argument.col_offset].decode())
    end = len(raw[: argument.end_col_offset].decode())
    lines[row] = lines[row][:start] + expression + lines[row][end:]
    return "".join(lines)


def _diff(path: str, old: str, new: str) -> str:
    return "".join(
        difflib.unified_diff(
            old.splitlines(keepends=True), new.splitlines(keepends=True), path, path
        )
    )
