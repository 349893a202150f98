"""Which module-level imports run only under a condition: an `if`/`elif`/`else` branch whose
test qtctl does not evaluate (`if os.environ.get("ENABLE_PROFILER"):`). Such an import is not
certain to run, so a failure of it is a warning, never an error (QT201, docs/precision.md)."""

from __future__ import annotations

import ast
import dataclasses
from collections.abc import Iterator
from typing import TYPE_CHECKING

from qtctl.diagnosis.python_source import _is_main_guard

if TYPE_CHECKING:
    from qtctl.diagnosis.imports import ImportProblem

MAX_CONDITION = 80  # characters of the `if` test quoted in a finding


def import_conditions(tree: ast.Module, main: bool = True) -> dict[int, str]:
    """Line of each module-level import under a condition -> that condition, as written (`not
    (...)` for an `else:` branch). `if __name__ == "__main__":` is no condition in the module
    that runs as __main__; TYPE_CHECKING and try/except ImportError imports are optional anyway."""
    return dict(_walk(tree.body, "", main))


def _walk(body: list[ast.stmt], condition: str, main: bool) -> Iterator[tuple[int, str]]:
    for node in body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            if condition:
                yield node.lineno, condition
        elif isinstance(node, ast.If):
            if main and _is_main_guard(node.test):
                yield from _walk(node.body, condition, main)
                yield from _walk(node.orelse, condition or "not __main__", main)
                continue
            test = _shorten(ast.unparse(node.test))
            yield from _walk(node.body, condition or test, main)
            yield from _walk(node.orelse, condition or f"not ({test})", main)
        elif isinstance(node, ast.With | ast.Try):
            yield from _walk(node.body, condition, main)


def _shorten(text: str) -> str:
    return text if len(text) <= MAX_CONDITION else text[: MAX_CONDITION - 3] + "..."


def mark_conditional(
    problems: list[ImportProblem], module: str, where: str, condition: str
) -> None:
    """After one import (`module` at `where`) was checked: the problems it added carry its
    condition; an unconditional import makes its package's conditional problem certain."""
    top = module.split(".")[0]
    for index, problem in enumerate(problems):
        if condition and problem.where == where and not problem.condition:
            problems[index] = dataclasses.replace(problem, condition=condition)
        elif not condition and problem.condition and problem.module.split(".")[0] == top:
            problems[index] = dataclasses.replace(problem, condition="", where=where)
