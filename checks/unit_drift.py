"""QT106: installed unit files that differ from their copies in the code roots."""

from __future__ import annotations

import difflib
import os
from collections import defaultdict
from collections.abc import Iterator, Sequence

from qtctl.adapters import safe_files, safe_walk
from qtctl.diagnosis.unit_file import unit_files_on_disk
from qtctl.engine.check import Check
from qtctl.engine.context import CheckContext
from qtctl.engine.findings import CodeDoc, Finding, Severity

SKIP_DIRS = frozenset(
    {".git", ".venv", "venv", "node_modules", "__pycache__", ".mypy_cache", ".tox", "site-packages"}
)
MAX_DEPTH = 8
MAX_ENTRIES = 200_000
MAX_UNIT_BYTES = 1 << 20
DIFF_LINES = 8

UNIT_DRIFT = CodeDoc(
    code="QT106",
    title="unit drift from the code roots",
    severity="warning/info",
    meaning="An installed fleet unit file differs from every copy of it in the code roots "
    "(fleet.code_roots), or copies of one unit disagree with each other, or installed units "
    "have no copy there at all (info). The finding names the copies and shows how they differ.",
    why="The repository no longer describes what runs: a redeploy from it silently reverts a "
    "hand fix, and reviewers read the wrong file.",
    fix="Decide which version is right, commit it to the code roots, install it from there, "
    "and delete the stale copies.",
)


def run(ctx: CheckContext) -> Iterator[Finding]:
    """For each installed fleet unit with copies in the code roots: which matches, and how not."""
    roots = [r for r in ctx.config.fleet.code_roots if os.path.isdir(r)]
    if not roots:
        return
    copies = unit_copies(roots)
    installed = unit_files_on_disk(ctx.config.fleet.units)
    uncovered = []
    for name, path in sorted(installed.items()):
        if name not in copies:
            uncovered.append(name)
            continue
        finding = _compare(name, path, copies[name])
        if finding:
            yield finding
    if uncovered:
        yield Finding(
            code=UNIT_DRIFT.code,
            severity=Severity.INFO,
            subject="code roots",
            message=f"{len(uncovered)} installed fleet unit(s) have no copy in the code roots",
            cause="not-in-repository",
            detail=tuple(uncovered),
            fix_hint="commit the installed unit files to the repository",
        )


def unit_copies(roots: Sequence[str]) -> dict[str, list[str]]:
    """Unit file name -> paths of its copies under the roots (bounded walk by folder fds)."""
    found: dict[str, list[str]] = defaultdict(list)
    seen = 0
    skipped: list[tuple[str, str]] = []
    for root in roots:
        try:
            for path, name, _ in safe_walk.walk(root, SKIP_DIRS, MAX_DEPTH, skipped):
                seen += 1
                if seen > MAX_ENTRIES:
                    return found
                if name.endswith((".service", ".timer")):
                    found[name].append(path)
        except (OSError, safe_files.UnsafePath):
            continue  # a missing root, or one behind a planted link: no copies there
    return found


def _compare(name: str, installed: str, copies: list[str]) -> Finding | None:
    mine = _normal(installed) or []
    texts = {c: lines for c in copies if (lines := _normal(c)) is not None}
    matching = [c for c, lines in texts.items() if lines == mine]
    differing = [c for c in texts if c not in matching]
    if not differing:
        return None
    detail: list[str] = []
    for copy in differing:
        diff = list(difflib.unified_diff(texts[copy], mine, copy, installed, lineterm="", n=0))
        changed = sum(1 for d in diff if d[:1] in "+-" and d[:3] not in ("+++", "---"))
        detail.append(f"{copy}: {changed} line(s) differ")
        detail += [f"  {d}" for d in diff[2 : 2 + DIFF_LINES]]
    if matching:
        message = f"matches {matching[0]}, but {len(differing)} other copy(ies) differ"
        severity = Severity.INFO
    else:
        message = f"installed file differs from all {len(copies)} copy(ies) in the code roots"
        severity = Severity.WARNING
    return Finding(
        code=UNIT_DRIFT.code,
        severity=severity,
        subject=name,
        message=message,
        cause="drift",
        detail=(f"installed: {installed}", *detail),
        fix_hint="make the repository copy the one that is installed; delete stale copies",
    )


def _normal(path: str) -> list[str] | None:
    """The file's lines, read as a check may read as root; None for a copy that is a link the
    fleet user could have planted (to a root-only file), a FIFO or a device: never quoted, and
    not counted as a copy."""
    try:
        data = safe_files.read_for_check(os.path.abspath(path), MAX_UNIT_BYTES)
    except (OSError, safe_files.UnsafePath):
        return None
    text = data.decode("utf-8", errors="replace")
    lines = [line.rstrip() for line in text.replace("\r\n", "\n").split("\n")]
    while lines and not lines[-1]:
        lines.pop()
    return lines


CHECK = Check(name="unit_drift", codes=(UNIT_DRIFT,), run=run)
