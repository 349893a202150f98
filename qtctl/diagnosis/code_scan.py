"""One bounded pass over the fleet's code roots: line endings and sys.path manipulation."""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from qtctl.diagnosis.line_endings import Endings, classify

SKIP_DIRS = frozenset(
    {
        ".git",
        ".hg",
        ".svn",
        ".venv",
        "venv",
        "node_modules",
        "__pycache__",
        ".mypy_cache",
        ".pytest_cache",
        ".tox",
        "site-packages",
    }
)
EXECUTED_EXTENSIONS = frozenset({".py", ".sh", ".service", ".timer", ".socket", ".bash"})
SYS_PATH = re.compile(rb"sys\.path\.(?:insert|append)\s*\((.*)")


@dataclass(frozen=True)
class FileEndings:
    """A text file with CRLF (or a BOM before its shebang)."""

    path: str
    ext: str
    endings: Endings


@dataclass(frozen=True)
class SysPathLine:
    """One line of a .py file that changes sys.path."""

    path: str
    line: int
    text: str


@dataclass
class CodeScan:
    """What one pass over the roots found, plus what it had to skip and why."""

    roots: tuple[str, ...]
    files_seen: int = 0
    bytes_read: int = 0
    crlf: list[FileEndings] = field(default_factory=list)
    sys_path: list[SysPathLine] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    missing_roots: list[str] = field(default_factory=list)


def scan(roots: Sequence[str], max_bytes: int, max_files: int = 500_000) -> CodeScan:
    """Walk the roots (no symlinked directories, no VCS/venv folders), reading each file once."""
    result = CodeScan(tuple(roots))
    for root in roots:
        if not os.path.isdir(root):
            result.missing_roots.append(root)
            continue
        for path in _files(root, result):
            if result.files_seen >= max_files:
                result.skipped.append((root, f"stopped after {max_files} files"))
                return result
            _scan_file(path, result, max_bytes)
    return result


def _files(root: str, result: CodeScan) -> Iterator[str]:
    def on_error(exc: OSError) -> None:
        result.skipped.append((exc.filename or root, f"unreadable: {exc.strerror}"))

    for folder, dirs, files in os.walk(root, onerror=on_error):
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS)
        for name in sorted(files):
            yield os.path.join(folder, name)


def _scan_file(path: str, result: CodeScan, max_bytes: int) -> None:
    try:
        info = os.lstat(path)
    except OSError as exc:
        result.skipped.append((path, f"unreadable: {exc.strerror}"))
        return
    if not stat.S_ISREG(info.st_mode):
        return  # symlinks, sockets, fifos: never followed, never read
    result.files_seen += 1
    if info.st_size > max_bytes:
        result.skipped.append((path, f"larger than {max_bytes // 2**20} MiB"))
        return
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError as exc:
        result.skipped.append((path, f"unreadable: {exc.strerror}"))
        return
    result.bytes_read += len(data)
    endings = classify(data)
    if endings.needs_fix:
        result.crlf.append(FileEndings(path, os.path.splitext(path)[1].lower(), endings))
    if path.endswith(".py") and b"sys.path" in data and not endings.binary:
        result.sys_path += _sys_path_lines(path, data)


def _sys_path_lines(path: str, data: bytes) -> list[SysPathLine]:
    found = []
    for number, raw in enumerate(data.splitlines(), 1):
        if SYS_PATH.search(raw) and not raw.lstrip().startswith(b"#"):
            found.append(SysPathLine(path, number, raw.decode("utf-8", "replace").strip()))
    return found
