"""Where a path that exists nowhere most likely lives: the same relative path under a code root.

A ghost copy of a layout (`/opt/quantum/microservices/x` when the code lives in
`/home/qt/quantum_trader/microservices/x`) keeps its tail. The longest tail of at least two
components that exists under exactly one code root names the likely real location; a tail found
under several roots, or only a bare file name, names nothing (a guess is not evidence).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

MIN_PARTS = 2  # `main.py` alone matches everywhere


def likely_location(
    path: str, roots: Sequence[str], exists: Callable[[str], bool] = os.path.lexists
) -> str:
    """The one existing `ROOT/TAIL` for the longest tail of `path`, or '' when there is none
    or more than one."""
    parts = [p for p in path.split("/") if p not in ("", ".")]
    if ".." in parts:
        return ""
    for size in range(len(parts) - 1, MIN_PARTS - 1, -1):
        tail = "/".join(parts[-size:])
        hits = {
            os.path.join(root, tail)
            for root in roots
            if root.startswith("/") and exists(os.path.join(root, tail))
        }
        hits.discard(os.path.normpath(path))
        if len(hits) == 1:
            return hits.pop()
        if hits:
            return ""  # ambiguous at the longest tail that matches: say nothing
    return ""


def missing_ancestor(path: str, exists: Callable[[str], bool] = os.path.lexists) -> str:
    """The outermost folder of `path` that does not exist (`path` itself if only it is missing),
    or '' when `path` exists."""
    if not path.startswith("/") or exists(path):
        return ""
    missing = path
    parent = os.path.dirname(path)
    while parent != "/" and not exists(parent):
        missing, parent = parent, os.path.dirname(parent)
    return missing
