"""Reading the fleet's trees as root: a walk by folder fds and non-blocking reads of plain files,
so a planted link, a folder swapped mid-walk, a FIFO or a tree thousands deep cannot steer or
stall a check."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator

from qtctl.adapters.safe_files import DIR_FLAGS, READ_FLAGS, open_folder


def read_head(path: str, max_bytes: int) -> bytes:
    """Up to `max_bytes` of a plain file for a check that only looks at it (a shebang, a stream
    name): never blocks on a FIFO or reads a device swapped in; b'' when it is not a plain
    file or cannot be read. Follows links like open() does: use `read_for_check` where the
    content is quoted."""
    return _read_plain(path, READ_FLAGS & ~os.O_NOFOLLOW, None, max_bytes)


def walk(
    root: str, skip: frozenset[str], max_depth: int, skipped: list[tuple[str, str]]
) -> Iterator[tuple[str, str, int]]:
    """(path, name, folder fd) of every non-folder entry under `root`, depth first, by folder
    fds: no symlinked folder followed, even one swapped in mid-walk; iterative (a tree thousands
    deep cannot exhaust the stack), one open fd per level, folders deeper than `max_depth`
    listed in `skipped` instead. Names are not opened: callers open them relative to the fd
    with O_NOFOLLOW."""
    stack: list[tuple[str, int, Iterator[tuple[str, bool]]]] = []
    try:
        top = open_folder(root)
        stack.append((root, top, _entries(root, top, skipped)))
        while stack:
            path, fd, pending = stack[-1]
            entry = next(pending, None)
            if entry is None:
                os.close(fd)
                stack.pop()
                continue
            name, is_folder = entry
            if not is_folder:
                yield os.path.join(path, name), name, fd
            elif name not in skip:
                _descend(stack, os.path.join(path, name), name, fd, max_depth, skipped)
    finally:
        for _, fd, _ in stack:
            os.close(fd)


def _descend(
    stack: list[tuple[str, int, Iterator[tuple[str, bool]]]],
    child: str,
    name: str,
    fd: int,
    max_depth: int,
    skipped: list[tuple[str, str]],
) -> None:
    if len(stack) > max_depth:
        skipped.append((child, f"deeper than {max_depth} folders: not scanned"))
        return
    try:
        sub = os.open(name, DIR_FLAGS | os.O_NOFOLLOW, dir_fd=fd)
    except OSError as exc:  # swapped for a link, or removed, since it was listed
        skipped.append((child, f"unreadable: {exc.strerror}"))
        return
    stack.append((child, sub, _entries(child, sub, skipped)))


def _entries(path: str, fd: int, skipped: list[tuple[str, str]]) -> Iterator[tuple[str, bool]]:
    """(name, is a folder) of a folder's entries: its files first, then its subfolders, each
    sorted."""
    try:
        with os.scandir(fd) as listing:
            entries = [(e.name, e.is_dir(follow_symlinks=False)) for e in listing]
    except OSError as exc:
        skipped.append((path, f"unreadable: {exc.strerror}"))
        entries = []
    return iter(sorted(entries, key=lambda e: (e[1], e[0])))


def read_at(folder: int, name: str, max_bytes: int) -> bytes:
    """Up to `max_bytes` of the plain file `name` in the folder fd, opened without following a
    link; b'' for a link, FIFO, device or unreadable file."""
    return _read_plain(name, READ_FLAGS, folder, max_bytes)


def _read_plain(path: str, flags: int, folder: int | None, max_bytes: int) -> bytes:
    try:
        fd = os.open(path, flags, dir_fd=folder)
    except OSError:
        return b""
    try:
        return os.read(fd, max_bytes) if stat.S_ISREG(os.fstat(fd).st_mode) else b""
    except OSError:
        return b""
    finally:
        os.close(fd)
