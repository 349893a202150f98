"""One bounded pass over the fleet's code roots: line endings and sys.path manipulation."""

from __future__ import annotations

import errno
import os
import re
import stat
from collections.abc import Sequence
from dataclasses import dataclass, field

from qtctl.adapters import safe_files, safe_walk
from qtctl.diagnosis.line_endings import BINARY_PROBE, BOM, Endings, classify

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
HEAD = 65536
SYS_PATH = re.compile(rb"sys\.path\.(?:insert|append)\s*\(")
MAX_DEPTH = 64  # deeper folders are listed as skipped
READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


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


def scan(
    roots: Sequence[str],
    max_bytes: int,
    max_files: int = 500_000,
    exclude: frozenset[str] = frozenset(),
) -> CodeScan:
    """Walk the roots (no symlinked directories, no VCS/venv folders, no folder named in
    `exclude`; other dot-folders are code too), reading each file once.

    The walk goes by folder fds (`safe_walk.walk`), so a folder the fleet user swaps for a
    symlink mid-scan is never followed, and a tree thousands deep cannot exhaust the stack; a
    root is reached only through links nobody else could plant."""
    result = CodeScan(tuple(roots))
    skip = SKIP_DIRS | exclude
    for root in roots:
        try:
            for path, name, folder in safe_walk.walk(root, skip, MAX_DEPTH, result.skipped):
                if result.files_seen >= max_files:
                    result.skipped.append((root, f"stopped after {max_files} files"))
                    return result
                _scan_file(path, name, folder, result, max_bytes)
        except safe_files.UnsafePath as exc:
            result.skipped.append((root, f"not scanned: {exc}"))
        except OSError:
            result.missing_roots.append(root)
    result.crlf.sort(key=lambda f: f.path)  # deterministic output, sorted once
    result.sys_path.sort(key=lambda line: (line.path, line.line))
    return result


def _scan_file(path: str, name: str, folder: int, result: CodeScan, max_bytes: int) -> None:
    data = _read(path, name, folder, result, max_bytes)
    if data is None:
        return
    if b"\r" in data or data.startswith(BOM):  # the common LF file costs one memchr
        endings = classify(data)
        if endings.needs_fix:
            result.crlf.append(FileEndings(path, os.path.splitext(path)[1].lower(), endings))
    if path.endswith(".py") and b"sys.path" in data and data.find(b"\0", 0, 8192) < 0:
        result.sys_path += _sys_path_lines(path, data)


def _read(path: str, name: str, folder: int, result: CodeScan, max_bytes: int) -> bytes | None:
    """The file's bytes, or None for binaries, oversized, unreadable and non-plain files.

    Opened relative to its folder's fd without following a symlink; the first read takes up to
    64 KiB: a shorter answer is the whole file, so most files cost open + fstat + read + close.
    """
    try:
        fd = os.open(name, READ_FLAGS, dir_fd=folder)
    except OSError as exc:
        if exc.errno not in (errno.ELOOP, errno.ENXIO):  # a symlink or a socket: not code
            result.skipped.append((path, f"unreadable: {exc.strerror}"))
        return None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            return None  # a FIFO or device where a file was listed: never read
        data = os.read(fd, HEAD)
        result.files_seen += 1
        if data.find(b"\0", 0, BINARY_PROBE) >= 0:
            result.bytes_read += len(data)
            return None  # binary (models, pickles): never read on
        if len(data) == HEAD:
            if info.st_size > max_bytes:
                result.skipped.append((path, f"larger than {max_bytes // 2**20} MiB"))
                return None
            data += os.read(fd, max(info.st_size - HEAD, 0))
    except OSError as exc:
        result.skipped.append((path, f"unreadable: {exc.strerror}"))
        return None
    finally:
        os.close(fd)
    result.bytes_read += len(data)
    return data


def _sys_path_lines(path: str, data: bytes) -> list[SysPathLine]:
    found = []
    number, counted = 1, 0
    for match in SYS_PATH.finditer(data):  # one C-level search over the whole buffer
        start = data.rfind(b"\n", 0, match.start()) + 1
        if start < counted:
            continue  # a second call on a line already reported
        number += data.count(b"\n", counted, start)
        counted = start
        end = data.find(b"\n", match.start())
        raw = data[start : end if end >= 0 else len(data)]
        if not raw.lstrip().startswith(b"#"):
            found.append(SysPathLine(path, number, raw.decode("utf-8", "replace").strip()))
    return found
