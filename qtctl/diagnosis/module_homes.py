"""Where under the code roots a missing module lives: the folders that would resolve it.

A root itself, the unit's WorkingDirectory and its script's folders are the first places; a
package one or two folders below a root (`libs3/qlib3/`, `svc_a/common/`) is in the code roots
too, so those folders are looked at when none of the first places has it. The walk is bounded
(depth, folder count), never follows a link, and skips dot-folders, caches and environments
(a venv, `site-packages`): the tree is the fleet user's, and doctor runs as root.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence

MAX_DEPTH = 2  # root/a/ and root/a/b/
MAX_FOLDERS = 4000  # per root
SKIPPED = frozenset({"__pycache__", "site-packages", "dist-packages", "node_modules", "venv"})

Resolves = Callable[[str, str], bool]


def below_roots(name: str, roots: Sequence[str], resolves: Resolves) -> list[str]:
    """Folders one or two levels below a code root from which `name` imports (`resolves(name,
    folder)`) as a regular module or package, sorted; a bare folder of that name (a namespace
    portion, maybe a data folder) is no evidence that it is the code the unit needs."""
    top = name.split(".")[0]
    homes: list[str] = []
    for root in dict.fromkeys(os.path.normpath(r) for r in roots):
        homes += [d for d in _folders(root) if _regular(d, top) and resolves(name, d)]
    return sorted(dict.fromkeys(homes))


def _regular(folder: str, top: str) -> bool:
    return os.path.isfile(os.path.join(folder, top, "__init__.py")) or os.path.isfile(
        os.path.join(folder, f"{top}.py")
    )


def _folders(root: str) -> Iterator[str]:
    """The folders below `root` (not `root`), breadth first, within the bounds."""
    level, seen = [root], 0
    for _depth in range(MAX_DEPTH):
        below: list[str] = []
        for folder in level:
            for child in _children(folder):
                seen += 1
                if seen > MAX_FOLDERS:
                    return
                yield child
                below.append(child)
        level = below


def _children(folder: str) -> list[str]:
    """Sub-folders worth a look: real folders (no links), not dot-folders, caches, venvs or
    packages (a package's inside is not where Python looks for a top-level module)."""
    try:
        with os.scandir(folder) as entries:
            found = [
                e.path
                for e in entries
                if e.is_dir(follow_symlinks=False)
                and not e.name.startswith(".")
                and e.name not in SKIPPED
            ]
    except OSError:
        return []
    return sorted(p for p in found if not _is_package_or_env(p))


def _is_package_or_env(path: str) -> bool:
    return any(
        os.path.lexists(os.path.join(path, marker)) for marker in ("__init__.py", "pyvenv.cfg")
    )
