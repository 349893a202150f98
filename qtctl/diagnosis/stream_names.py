"""Near-miss stream names (truncations, prefixes, small edits, a missing prefix) and the evidence
of who uses each name: references in the code roots and env files."""

from __future__ import annotations

import glob
import re
from collections.abc import Iterable, Iterator, Sequence

from qtctl.adapters import safe_files, safe_walk

MIN_NAME = 6
MAX_EDITS = 2
TEXT_LIMIT = 2 * 2**20
MAX_FILES = 100_000  # beyond this the naming evidence is incomplete (a 15,000-file tree fits)
MAX_DEPTH = 64
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


def references(names: Sequence[str], roots: Sequence[str]) -> tuple[dict[str, list[str]], bool]:
    """Files under the roots and the fleet's env files that name each stream exactly.

    A name counts only as a whole token: `trade.execution.res` inside
    `trade.execution.result` is not a reference to the shorter name. The roots are walked by
    folder fds and files opened without following a link, so a planted link to a root-only file
    cannot answer "does it name this stream". Also says whether the evidence is complete (not
    past MAX_FILES): a migration must not rest on incomplete evidence.
    """
    patterns = {
        n: re.compile(rb"(?<![\w.:-])" + re.escape(n.encode()) + rb"(?![\w.-])") for n in names
    }
    found: dict[str, list[str]] = {n: [] for n in names}
    seen = 0
    for path, data in _text_files(roots):
        seen += 1
        if seen > MAX_FILES:
            return found, False
        if b"\0" in data[:4096]:
            continue
        for name, pattern in patterns.items():
            if pattern.search(data):
                found[name].append(path)
    return found, True


def _text_files(roots: Sequence[str]) -> Iterator[tuple[str, bytes]]:
    for pattern in ENV_GLOBS:
        for path in sorted(glob.glob(pattern)):
            yield path, safe_walk.read_head(path, TEXT_LIMIT)
    skipped: list[tuple[str, str]] = []
    for root in roots:
        try:
            for path, name, folder in safe_walk.walk(root, SKIP_DIRS, MAX_DEPTH, skipped):
                yield path, safe_walk.read_at(folder, name, TEXT_LIMIT)
        except (OSError, safe_files.UnsafePath):
            continue  # a missing root, or one behind a planted link: nothing read
