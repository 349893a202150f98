"""QT302/QT202 on a checkout, from doctor's own code scan: one finding per CRLF file and per
sys.path change relative to `__file__` or to a hard-coded path the checkout does not map."""

from __future__ import annotations

import os
from collections.abc import Iterator

from qtctl.checks.sys_path_hacks import LITERAL, LOOKS_LIKE_PATH, SUGGESTION
from qtctl.diagnosis.code_scan import EXECUTED_EXTENSIONS, CodeScan
from qtctl.engine.findings import Finding, Severity
from qtctl.formats.model import Location, shown_path
from qtctl.lint.tree import PathMap


def source_findings(
    scan: CodeScan, already: set[str], paths: PathMap
) -> Iterator[tuple[Finding, Location]]:
    """CRLF files (not those a QT301 already names), then the sys.path lines."""
    for item in scan.crlf:
        if item.path in already:
            continue
        where = shown_path(item.path)
        executed = item.ext in EXECUTED_EXTENSIONS
        what = "mixed" if item.endings.mixed else "CRLF"
        yield (
            Finding(
                "QT302",
                Severity.WARNING if executed else Severity.INFO,
                where,
                f"{what} line endings ({item.endings.crlf} of {item.endings.lf} lines)"
                if item.endings.has_crlf
                else "a UTF-8 BOM before the shebang",
                cause="crlf-sources" if executed else "crlf-other",
                fix_hint="convert to LF and add `* text=auto eol=lf` to .gitattributes",
            ),
            Location(where),
        )
    for line in scan.sys_path:
        cause = _hack(line.text, paths)
        if cause:
            where = shown_path(line.path)
            yield (
                Finding(
                    "QT202",
                    Severity.WARNING,
                    where,
                    f"{cause}: {line.text}",
                    cause=cause,
                    fix_hint=SUGGESTION,
                ),
                Location(where, line.line),
            )
    for path, why in scan.skipped:
        yield (
            Finding(
                "QT302", Severity.INFO, shown_path(path), f"not scanned: {why}", cause="skipped"
            ),
            Location(shown_path(path)),
        )


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
