"""Evaluate a script's top-level sys.path changes statically (never executing it)."""

from __future__ import annotations

import ast
import posixpath
from collections.abc import Mapping
from dataclasses import dataclass

EMPTY: Mapping[str, str | None] = {}
PATH_FUNCS = frozenset({"dirname", "abspath", "realpath", "normpath", "join", "expanduser"})


@dataclass(frozen=True)
class PathChange:
    """One sys.path.insert/append at the top level of a file."""

    position: int | None  # index for insert, None for append
    value: str | None  # None when it cannot be evaluated statically
    line: int
    source: str


def path_changes(tree: ast.Module, source: str, file: str, cwd: str) -> list[PathChange]:
    """Top-level sys.path.insert/append calls with their evaluated arguments, in order; a name
    assigned earlier at the top level (`root = Path(__file__).resolve().parents[2]`) is followed."""
    changes = []
    names: dict[str, str | None] = {}
    for node in _top_level(tree.body):
        _assign(node, names, file, cwd)
        call = node.value if isinstance(node, ast.Expr) else None
        if not isinstance(call, ast.Call) or not is_sys_path_call(call.func):
            continue
        method = call.func.attr  # type: ignore[attr-defined]
        if method == "insert" and len(call.args) == 2:
            first = call.args[0]
            index = (
                first.value
                if isinstance(first, ast.Constant) and isinstance(first.value, int)
                else 0
            )
            value = _eval(call.args[1], file, cwd, names)
            changes.append(PathChange(int(index), value, node.lineno, _text(source, node)))
        elif method == "append" and len(call.args) == 1:
            value = _eval(call.args[0], file, cwd, names)
            changes.append(PathChange(None, value, node.lineno, _text(source, node)))
    return changes


def file_path_changes(file: str, cwd: str) -> list[PathChange]:
    """`path_changes` of a module file on disk (none when it does not parse)."""
    from qtctl.diagnosis.python_source import parse

    tree, source = parse(file)
    return path_changes(tree, source, file, cwd) if tree is not None else []


def _assign(node: ast.stmt, names: dict[str, str | None], file: str, cwd: str) -> None:
    """`x = ...` / `x: T = ...` / `a = b = ...`: the names now hold the evaluated value (None
    when it cannot be evaluated, so a stale earlier value is never used)."""
    if isinstance(node, ast.Assign):
        targets, value = node.targets, node.value
    elif isinstance(node, ast.AnnAssign) and node.value is not None:
        targets, value = [node.target], node.value
    else:
        return
    result = _eval(value, file, cwd, names)
    for target in targets:
        if isinstance(target, ast.Name):
            names[target.id] = result


def file_relative_lines(tree: ast.Module) -> dict[int, str]:
    """Lines anywhere in the module whose sys.path.insert/append argument depends on __file__
    (directly or through names assigned from it, in source order) or on the working directory
    (os.getcwd(), '.'): line -> "file" or "cwd"."""
    tainted: dict[str, str] = {}
    found: dict[int, str] = {}
    nodes = sorted(
        (n for n in ast.walk(tree) if isinstance(n, ast.Assign | ast.AnnAssign | ast.Call)),
        key=lambda n: (n.lineno, n.col_offset),
    )
    for node in nodes:
        if isinstance(node, ast.Call):
            if is_sys_path_call(node.func) and node.args:
                kind = _depends_on(node.args[-1], tainted)
                if kind:
                    found[node.lineno] = kind
            continue
        kind = _depends_on(node.value, tainted) if node.value is not None else ""
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        for target in targets:
            if isinstance(target, ast.Name):
                tainted.pop(target.id, None)
                if kind:
                    tainted[target.id] = kind
    return found


def _depends_on(node: ast.expr, tainted: dict[str, str]) -> str:
    for inner in ast.walk(node):
        if isinstance(inner, ast.Name) and (inner.id == "__file__" or inner.id in tainted):
            return "file" if inner.id == "__file__" else tainted[inner.id]
    for inner in ast.walk(node):
        if isinstance(inner, ast.Call) and _func_name(inner.func) in ("getcwd", "cwd"):
            return "cwd"
        if isinstance(inner, ast.Constant) and inner.value in (".", "./", ""):
            return "cwd"
    return ""


def _top_level(body: list[ast.stmt]) -> list[ast.stmt]:
    """Statements that run at import: the body and the branches of if/try/with at top level."""
    found: list[ast.stmt] = []
    for node in body:
        found.append(node)
        if isinstance(node, ast.If | ast.With):
            found += _top_level(node.body) + _top_level(getattr(node, "orelse", []))
        elif isinstance(node, ast.Try):
            found += _top_level(node.body) + _top_level(node.orelse) + _top_level(node.finalbody)
    return found


def is_sys_path_call(func: ast.expr) -> bool:
    """`sys.path.insert(...)` or `sys.path.append(...)` (the callee of an ast.Call)."""
    return (
        isinstance(func, ast.Attribute)
        and func.attr in ("insert", "append")
        and isinstance(func.value, ast.Attribute)
        and func.value.attr == "path"
        and isinstance(func.value.value, ast.Name)
        and func.value.value.id == "sys"
    )


def _eval(
    node: ast.expr, file: str, cwd: str, names: Mapping[str, str | None] = EMPTY
) -> str | None:
    """Strings from constants, __file__, names assigned before, os.path.*, os.getcwd() and
    pathlib.Path operations."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.Name):
        return file if node.id == "__file__" else names.get(node.id)
    if isinstance(node, ast.Call):
        return _eval_call(node, file, cwd, names)
    if isinstance(node, ast.Attribute) and node.attr == "parent":
        inner = _eval(node.value, file, cwd, names)
        return posixpath.dirname(inner) if inner is not None else None
    if (
        isinstance(node, ast.Subscript)
        and isinstance(node.value, ast.Attribute)
        and node.value.attr == "parents"
        and isinstance(node.slice, ast.Constant)
        and isinstance(node.slice.value, int)
    ):
        inner = _eval(node.value.value, file, cwd, names)
        if inner is None:
            return None
        for _ in range(node.slice.value + 1):
            inner = posixpath.dirname(inner)
        return inner
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
        left, right = _eval(node.left, file, cwd, names), _eval(node.right, file, cwd, names)
        return posixpath.join(left, right) if left is not None and right is not None else None
    return None


def _eval_call(node: ast.Call, file: str, cwd: str, names: Mapping[str, str | None]) -> str | None:
    name = _func_name(node.func)
    args = [_eval(a, file, cwd, names) for a in node.args]
    if name in ("getcwd", "cwd"):
        return cwd
    if name in ("str", "Path", "PurePath", "PosixPath", "fspath") and len(args) == 1:
        return args[0]
    if name in ("resolve", "absolute") and isinstance(node.func, ast.Attribute):
        inner = _eval(node.func.value, file, cwd, names)
        return _absolute(inner, cwd) if inner is not None else None
    if name not in PATH_FUNCS or any(a is None for a in args) or not args:
        return None
    values = [a for a in args if a is not None]
    if name == "join":
        return posixpath.join(*values)
    if name == "dirname":
        return posixpath.dirname(values[0])
    if name == "expanduser":
        return posixpath.expanduser(values[0])
    return _absolute(values[0], cwd)


def _func_name(func: ast.expr) -> str:
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return ""


def _absolute(path: str, cwd: str) -> str:
    return posixpath.normpath(path if path.startswith("/") else posixpath.join(cwd, path))


def _text(source: str, node: ast.stmt) -> str:
    return (ast.get_source_segment(source, node) or "").strip()
