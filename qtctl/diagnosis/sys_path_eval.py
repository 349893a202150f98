"""Evaluate a script's top-level sys.path changes statically (never executing it)."""

from __future__ import annotations

import ast
import posixpath
from dataclasses import dataclass

PATH_FUNCS = frozenset({"dirname", "abspath", "realpath", "normpath", "join", "expanduser"})


@dataclass(frozen=True)
class PathChange:
    """One sys.path.insert/append at the top level of a file."""

    position: int | None  # index for insert, None for append
    value: str | None  # None when it cannot be evaluated statically
    line: int
    source: str


def path_changes(tree: ast.Module, source: str, file: str, cwd: str) -> list[PathChange]:
    """Top-level sys.path.insert/append calls with their evaluated arguments, in order."""
    changes = []
    for node in _top_level(tree.body):
        call = node.value if isinstance(node, ast.Expr) else None
        if not isinstance(call, ast.Call) or not _is_sys_path(call.func):
            continue
        method = call.func.attr  # type: ignore[attr-defined]
        if method == "insert" and len(call.args) == 2:
            first = call.args[0]
            index = (
                first.value
                if isinstance(first, ast.Constant) and isinstance(first.value, int)
                else 0
            )
            value = _eval(call.args[1], file, cwd)
            changes.append(PathChange(int(index), value, node.lineno, _text(source, node)))
        elif method == "append" and len(call.args) == 1:
            value = _eval(call.args[0], file, cwd)
            changes.append(PathChange(None, value, node.lineno, _text(source, node)))
    return changes


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


def _is_sys_path(func: ast.expr) -> bool:
    return (
        isinstance(func, ast.Attribute)
        and func.attr in ("insert", "append")
        and isinstance(func.value, ast.Attribute)
        and func.value.attr == "path"
        and isinstance(func.value.value, ast.Name)
        and func.value.value.id == "sys"
    )


def _eval(node: ast.expr, file: str, cwd: str) -> str | None:
    """Strings from constants, __file__, os.path.*, os.getcwd() and pathlib.Path operations."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.Name) and node.id == "__file__":
        return file
    if isinstance(node, ast.Call):
        return _eval_call(node, file, cwd)
    if isinstance(node, ast.Attribute) and node.attr == "parent":
        inner = _eval(node.value, file, cwd)
        return posixpath.dirname(inner) if inner is not None else None
    if (
        isinstance(node, ast.Subscript)
        and isinstance(node.value, ast.Attribute)
        and node.value.attr == "parents"
        and isinstance(node.slice, ast.Constant)
        and isinstance(node.slice.value, int)
    ):
        inner = _eval(node.value.value, file, cwd)
        if inner is None:
            return None
        for _ in range(node.slice.value + 1):
            inner = posixpath.dirname(inner)
        return inner
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
        left, right = _eval(node.left, file, cwd), _eval(node.right, file, cwd)
        return posixpath.join(left, right) if left is not None and right is not None else None
    return None


def _eval_call(node: ast.Call, file: str, cwd: str) -> str | None:
    name = _func_name(node.func)
    args = [_eval(a, file, cwd) for a in node.args]
    if name in ("getcwd", "cwd"):
        return cwd
    if name in ("str", "Path", "PurePath", "PosixPath", "fspath") and len(args) == 1:
        return args[0]
    if name in ("resolve", "absolute") and isinstance(node.func, ast.Attribute):
        inner = _eval(node.func.value, file, cwd)
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
