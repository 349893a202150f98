"""QT302/QT202 on a checkout, from doctor's own code scan: one finding per CRLF file and per
sys.path change relative to `__file__` or to a hard-coded path the checkout does not map."""

from __future__ import annotations

import ast
import functools
import os
from collections.abc import Iterator, Sequence

from qtctl.adapters import safe_walk
from qtctl.checks.sys_path_hacks import LITERAL, LOOKS_LIKE_PATH, SUGGESTION
from qtctl.diagnosis.code_scan import (
    EXECUTED_EXTENSIONS,
    SYS_PATH,
    CodeScan,
    FileEndings,
    SysPathLine,
    scan,
)
from qtctl.diagnosis.line_endings import BINARY_PROBE, classify
from qtctl.diagnosis.python_source import parse
from qtctl.diagnosis.sys_path_eval import is_sys_path_call
from qtctl.engine.findings import Finding, Severity
from qtctl.formats.model import Location, shown_path
from qtctl.lint.tree import PathMap


def code_scan(paths: Sequence[str], max_bytes: int, max_files: int) -> CodeScan:
    """Doctor's code scan of the folders given, plus the same reading of each file given."""
    folders = [p for p in paths if os.path.isdir(p)]
    result = scan(folders, max_bytes, max_files)
    for path in (p for p in paths if not os.path.isdir(p)):
        data = safe_walk.read_head(path, max_bytes)  # never a FIFO
        result.files_seen += 1
        if data.find(b"\0", 0, BINARY_PROBE) >= 0:
            continue
        endings = classify(data)
        if endings.needs_fix:
            result.crlf.append(FileEndings(path, os.path.splitext(path)[1].lower(), endings))
        if path.endswith(".py"):
            result.sys_path += _sys_path_lines(path, data)
    return result


def _sys_path_lines(path: str, data: bytes) -> list[SysPathLine]:
    lines = data.decode("utf-8", "replace").splitlines()
    return [
        SysPathLine(path, number, text.strip())
        for number, text in enumerate(lines, 1)
        if SYS_PATH.search(text.encode()) and not text.lstrip().startswith("#")
    ]


def source_findings(
    scan: CodeScan, already: set[str], paths: PathMap
) -> Iterator[tuple[Finding, Location]]:
    """CRLF files (not those a QT301 already names), the sys.path lines, what was skipped."""
    for item in scan.crlf:
        if item.path not in already:
            yield _crlf(item)
    for line in scan.sys_path:
        call = _call_text(line)
        cause = _hack(call, paths) if call else ""
        if cause:
            where = shown_path(line.path)
            finding = Finding(
                "QT202",
                Severity.WARNING,
                where,
                f"{cause}: {call}",
                cause=cause,
                fix_hint=SUGGESTION,
            )
            yield finding, Location(where, line.line)
    for path, why in scan.skipped:
        where = shown_path(path)
        yield (
            Finding(
                "QT302",
                Severity.INFO,
                where,
                why if why.startswith("not scanned") else f"not scanned: {why}",
                cause="skipped",
            ),
            Location(where),
        )


def _crlf(item: FileEndings) -> tuple[Finding, Location]:
    where = shown_path(item.path)
    executed = item.ext in EXECUTED_EXTENSIONS
    what = "mixed" if item.endings.mixed else "CRLF"
    message = (
        f"{what} line endings ({item.endings.crlf} of {item.endings.lf} lines)"
        if item.endings.has_crlf
        else "a UTF-8 BOM before the shebang"
    )
    finding = Finding(
        "QT302",
        Severity.WARNING if executed else Severity.INFO,
        where,
        message,
        cause="crlf-sources" if executed else "crlf-other",
        fix_hint="convert to LF and add `* text=auto eol=lf` to .gitattributes",
    )
    return finding, Location(where)


def _call_text(line: SysPathLine) -> str:
    """The whole `sys.path.insert/append(...)` call starting on the line (it may span lines),
    or '' when the line only has the words (a string, a docstring); a file Python cannot
    parse keeps what the text search found."""
    tree, source = parse(line.path)
    if tree is None:
        return line.text
    return _calls(tree, source).get(line.line, "")


@functools.lru_cache(maxsize=256)
def _calls(tree: ast.Module, source: str) -> dict[int, str]:
    calls = (n for n in ast.walk(tree) if isinstance(n, ast.Call) and is_sys_path_call(n.func))
    return {c.lineno: " ".join((ast.get_source_segment(source, c) or "").split()) for c in calls}


def _hack(text: str, paths: PathMap) -> str:
    """`file-relative`, `missing-path` (a literal path neither the checkout nor this host
    has), or '' for a sys.path change lint does not judge."""
    if "__file__" in text:
        return "file-relative"
    for match in LITERAL.finditer(text):
        path = match.group(2)
        if LOOKS_LIKE_PATH.match(path) and not _exists(os.path.expanduser(path), paths):
            return "missing-path"
    return ""


def _exists(path: str, paths: PathMap) -> bool:
    mapped = paths.to_tree(path) if path.startswith("/") else ""
    return os.path.exists(mapped) if mapped else os.path.exists(path)
