"""Near-miss stream names (truncations, prefixes, small edits, a missing prefix) and the evidence
of who uses each name: references in the code roots and env files."""

from __future__ import annotations

import glob
import os
import re
from collections.abc import Iterable, Sequence

from qtctl.adapters import safe_files

MIN_NAME = 6
MAX_EDITS = 2
TEXT_LIMIT = 2 * 2**20
ENV_GLOBS = ("/etc/quantum/*.env", "/etc/quantum/*/*.env", "/etc/default/quantum*")
SKIP_DIRS = frozenset({".git", ".venv", "venv", "node_modules", "__pycache__", "site-packages"})


def bare(key: str, prefix: str) -> str:
    """The stream name without the fleet prefix."""
    return key[len(prefix) :] if key.startswith(prefix) else key


def near_misses(expected: str, keys: Iterable[str], prefix: str) -> list[str]:
    """Existing stream keys that look like a misspelling of `expected` (a bare name)."""
    found = []
    for key in keys:
        name = bare(key, prefix)
        if key == prefix + expected or name.startswith(expected + ":"):
            continue  # `NAME:dead-letter`, `NAME:quarantine`: streams derived from it, by design
        if name == expected or _related(name, expected):
            found.append(key)
    return sorted(found)


def _related(name: str, expected: str) -> bool:
    shorter, longer = sorted((name, expected), key=len)
    if len(shorter) >= MIN_NAME and longer.startswith(shorter):
        return True  # a truncation, or an extension of the expected name
    return len(expected) >= 2 * MIN_NAME and _edits(name, expected) <= MAX_EDITS


def _edits(a: str, b: str) -> int:
    if abs(len(a) - len(b)) > MAX_EDITS:
        return MAX_EDITS + 1
    row = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        prev, row[0] = row[0], i
        for j, cb in enumerate(b, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (ca != cb))
    return row[-1]


def references(names: Sequence[str], roots: Sequence[str]) -> dict[str, list[str]]:
    """Files under the roots and the fleet's env files that name each stream exactly.

    A name counts only as a whole token: `trade.execution.res` inside
    `trade.execution.result` is not a reference to the shorter name.
    """
    patterns = {
        n: re.compile(rb"(?<![\w.:-])" + re.escape(n.encode()) + rb"(?![\w.-])") for n in names
    }
    found: dict[str, list[str]] = {n: [] for n in names}
    for path in _text_files(roots):
        data = safe_files.read_head(path, TEXT_LIMIT)  # a FIFO in the tree must not hang it
        if b"\0" in data[:4096]:
            continue
        for name, pattern in patterns.items():
            if pattern.search(data):
                found[name].append(path)
    return found


def _text_files(roots: Sequence[str]) -> Iterable[str]:
    for pattern in ENV_GLOBS:
        yield from sorted(glob.glob(pattern))
    for root in roots:
        for folder, dirs, files in os.walk(root):
            dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS)
            for name in sorted(files):
                yield os.path.join(folder, name)
