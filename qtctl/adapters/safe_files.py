"""Root-safe file operations on paths the fleet user can write: no name is followed twice.

qtctl runs as root over files the unprivileged fleet user owns, in folders that user can write.
Every operation here:
- walks the path from `/` one component at a time with O_NOFOLLOW; a symlink on the way is
  followed only when it is root's and sits in a folder no other user can write, else the
  operation is refused (`UnsafePath`) before anything is touched;
- acts on the final name only through its folder's fd (`dir_fd`), and on the file only through
  an fd opened with O_NOFOLLOW (fchmod/fchown, never chmod/chown by path);
- creates temp files with O_CREAT|O_EXCL|O_NOFOLLOW, sets mode and owner through the fd before
  the rename, re-checks that the target is still the file that was read (device, inode, size,
  hash) and, after the rename, that the name now holds the inode it wrote.
A rename never follows a symlink at its destination, so an attacker who swaps names around can
at worst make the operation fail; the victim of a planted link is never opened for writing.
"""

from __future__ import annotations

import errno
import hashlib
import os
import secrets
import stat
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass

from qtctl.errors import QtctlError

DIR_FLAGS = os.O_DIRECTORY | os.O_RDONLY | os.O_CLOEXEC
READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
CREATE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
MAX_LINKS = 40
SPECIAL_BITS = stat.S_ISUID | stat.S_ISGID | stat.S_ISVTX


class UnsafePath(QtctlError):
    """A path qtctl will not act on: a symlink where the fleet user could have planted it, a
    file that changed since it was read, or something that is not a plain file."""


@dataclass(frozen=True)
class Snapshot:
    """What a file was when qtctl read it; a replace goes ahead only if it still is."""

    dev: int
    ino: int
    size: int
    sha256: str
    mode: int
    uid: int
    gid: int
    nlink: int

    def same_file(self, other: Snapshot) -> bool:
        """The same inode with the same content."""
        return (self.dev, self.ino, self.size, self.sha256) == (
            other.dev,
            other.ino,
            other.size,
            other.sha256,
        )


@contextmanager
def private_umask() -> Iterator[None]:
    """Files and folders created meanwhile are the creator's only (0600/0700) from the start."""
    old = os.umask(0o077)
    try:
        yield
    finally:
        os.umask(old)


def sha256(data: bytes) -> str:
    """The hex digest qtctl records for file contents."""
    return hashlib.sha256(data).hexdigest()


@contextmanager
def parent_of(path: str, create: bool = False, mode: int = 0o755) -> Iterator[tuple[int, str]]:
    """(fd of the folder holding `path`, the final name), the folder reached without following
    any symlink the fleet user could have planted; `create` makes missing folders (`mode`)."""
    parts = [p for p in path.split("/") if p not in ("", ".")]
    if not path.startswith("/") or not parts or parts[-1] == "..":
        raise UnsafePath(f"{path}: not an absolute path to a file")
    fd = _walk(parts[:-1], path, create, mode)
    try:
        yield fd, parts[-1]
    finally:
        os.close(fd)


def read_for_check(path: str, max_bytes: int) -> bytes:
    """`read_owned_for_check` without the owner."""
    return read_owned_for_check(path, max_bytes)[0]


def read_owned_for_check(path: str, max_bytes: int) -> tuple[bytes, int]:
    """What a check may read of a fleet file as root, and its owner: reached like `read_file`,
    where a final
    symlink is followed only when nobody but root could have planted it (a release link in
    /etc), never a FIFO or device, at most `max_bytes` (the rest is not read). UnsafePath says
    why not; OSError when it is not there."""
    links = 0
    while True:
        with parent_of(path) as (folder, name):
            info = os.stat(name, dir_fd=folder, follow_symlinks=False)
            if not stat.S_ISLNK(info.st_mode):
                fd = _open_plain(folder, name, path)
                try:  # the owner of the very inode read, not of whatever the name is now
                    return os.read(fd, max_bytes), os.fstat(fd).st_uid
                finally:
                    os.close(fd)
            links += 1
            target = _trusted_link(folder, name, path, links)
        path = target if target.startswith("/") else os.path.join(os.path.dirname(path), target)


def refusal(path: str) -> str:
    """Why qtctl would refuse to change the file at `path` ('' when it would go ahead): what a
    planner says before anything runs (apply checks again, through fds)."""
    try:
        with parent_of(path) as (folder, name):
            fd = _open_plain(folder, name, path)
            info = os.fstat(fd)
            os.close(fd)
    except UnsafePath as exc:
        return str(exc)
    except OSError as exc:
        return f"{path}: {exc.strerror}"
    if info.st_nlink > 1:
        return f"{path}: has {info.st_nlink} hard links"
    if info.st_mode & SPECIAL_BITS:
        return f"{path}: setuid, setgid or sticky"
    return ""


def open_folder(path: str) -> int:
    """An fd of the folder at `path` (the caller closes it), reached like `parent_of`: a link on
    the way (the folder itself included) is followed only where nobody else could plant it."""
    if not path.startswith("/"):
        raise UnsafePath(f"{path}: not an absolute path")
    return _walk([p for p in path.split("/") if p not in ("", ".")], path, False, 0)


def read_file(path: str, max_bytes: int = 0) -> tuple[bytes, Snapshot]:
    """A plain file's bytes and snapshot; a symlink, a special file, or (with `max_bytes`) a
    file larger than that is refused."""
    with parent_of(path) as (folder, name):
        return _read_at(folder, name, path, max_bytes)


@contextmanager
def open_plain(path: str) -> Iterator[int]:
    """An fd of a plain file for streaming reads (archives), reached like `read_file`."""
    with parent_of(path) as (folder, name):
        fd = _open_plain(folder, name, path)
    try:
        yield fd
    finally:
        os.close(fd)


def replace_file(path: str, data: bytes, expect: Snapshot) -> Snapshot:
    """Replace a file that must still be `expect`, keeping its mode (no setuid/setgid/sticky),
    owner and group; returns the new file's snapshot."""
    with parent_of(path) as (folder, name):
        current = _read_at(folder, name, path)[1]
        _still(expect, current, path)
        if current.nlink > 1:
            raise UnsafePath(f"{path}: has {current.nlink} hard links; not replacing it")
        if current.mode & SPECIAL_BITS:
            raise UnsafePath(f"{path}: setuid, setgid or sticky; not replacing it")
        return _write_at(folder, name, path, data, current.mode, (current.uid, current.gid), expect)


def write_file(
    path: str, data: bytes, mode: int = 0o644, owner: tuple[int, int] | None = None
) -> Snapshot:
    """Create or replace a file qtctl owns the content of (a drop-in, a report, an installed
    unit), making missing folders; a symlink at the name is replaced, never followed."""
    with parent_of(path, create=True) as (folder, name):
        return _write_at(folder, name, path, data, mode, owner, None)


def secure_file(
    path: str, uid: int, gid: int, mode: int, expect: tuple[int, int] | None
) -> Snapshot:
    """fchmod + fchown a plain file through an O_NOFOLLOW fd (narrowed first); `expect` is the
    (device, inode) it must be. Returns the snapshot from before the change."""
    with parent_of(path) as (folder, name):
        fd = _open_plain(folder, name, path)
        try:
            before = _snapshot(fd, b"")
            if expect is not None and (before.dev, before.ino) != expect:
                raise UnsafePath(f"{path}: is not the file qtctl recorded (inode changed)")
            if before.nlink > 1:  # another name elsewhere would be changed too
                raise UnsafePath(f"{path}: has {before.nlink} hard links; not changing it")
            os.fchmod(fd, mode & 0o777)  # never more readable on the way, never setuid
            os.fchown(fd, uid, gid)
            os.fchmod(fd, mode & 0o777)
            return before
        finally:
            os.close(fd)


def remove_dangling_link(path: str) -> str | None:
    """Remove a symlink whose target does not exist; its target, or None if it is not one."""
    with parent_of(path) as (folder, name):
        try:
            info = os.stat(name, dir_fd=folder, follow_symlinks=False)
        except FileNotFoundError:
            return None
        if not stat.S_ISLNK(info.st_mode):
            return None
        target = os.readlink(name, dir_fd=folder)
        with suppress(OSError):
            os.stat(name, dir_fd=folder)  # follows it: it resolves, so it is not dangling
            return None
        os.unlink(name, dir_fd=folder)
        return target


def restore_link(path: str, target: str) -> bool:
    """Put a removed symlink back; False when the name exists meanwhile."""
    with parent_of(path) as (folder, name):
        try:
            os.symlink(target, name, dir_fd=folder)
        except FileExistsError:
            return False
        return True


def remove_file(path: str, expect_sha256: str) -> None:
    """Remove a plain file that must still hold exactly the content qtctl wrote."""
    with parent_of(path) as (folder, name):
        current = _read_at(folder, name, path)[1]
        if current.sha256 != expect_sha256:
            raise UnsafePath(f"{path}: changed since qtctl wrote it; not removing it")
        os.unlink(name, dir_fd=folder)


def _walk(parts: list[str], path: str, create: bool, mode: int) -> int:
    fd = os.open("/", DIR_FLAGS)
    queue, links = list(parts), 0
    try:
        while queue:
            part = queue.pop(0)
            try:
                nfd = os.open(part, DIR_FLAGS | os.O_NOFOLLOW, dir_fd=fd)
            except FileNotFoundError:
                if not create:
                    raise
                os.mkdir(part, mode, dir_fd=fd)
                nfd = os.open(part, DIR_FLAGS | os.O_NOFOLLOW, dir_fd=fd)
            except OSError as exc:
                if exc.errno not in (errno.ELOOP, errno.ENOTDIR):
                    raise
                links += 1
                target = _trusted_link(fd, part, path, links)
                queue[:0] = [p for p in target.split("/") if p not in ("", ".")]
                if target.startswith("/"):
                    os.close(fd)
                    fd = os.open("/", DIR_FLAGS)
                continue
            os.close(fd)
            fd = nfd
    except BaseException:
        os.close(fd)
        raise
    return fd


def _trusted_link(folder: int, name: str, path: str, links: int) -> str:
    """The target of a symlink on the way, if nobody but root could have put it there."""
    info = os.stat(name, dir_fd=folder, follow_symlinks=False)
    if not stat.S_ISLNK(info.st_mode):
        raise UnsafePath(f"{path}: {name} is not a folder")
    if not (_trusted(os.fstat(folder)) and info.st_uid in (0, os.geteuid())):
        raise UnsafePath(
            f"{path}: {name} is a symlink in a folder another user can write; qtctl does not "
            "follow it (act on the real path by hand)"
        )
    if links > MAX_LINKS:
        raise UnsafePath(f"{path}: too many levels of symlinks")
    return os.readlink(name, dir_fd=folder)


def _trusted(info: os.stat_result) -> bool:
    """Nobody but root (or qtctl's own user) can change what the folder holds."""
    others = stat.S_IWGRP | stat.S_IWOTH
    return info.st_uid in (0, os.geteuid()) and not info.st_mode & others


def _open_plain(folder: int, name: str, path: str) -> int:
    try:
        info = os.stat(name, dir_fd=folder, follow_symlinks=False)
    except FileNotFoundError:
        raise UnsafePath(f"{path}: does not exist") from None
    if stat.S_ISLNK(info.st_mode):
        raise UnsafePath(f"{path}: is a symlink; qtctl acts on plain files only")
    if not stat.S_ISREG(info.st_mode):
        raise UnsafePath(f"{path}: is not a plain file")
    fd = os.open(name, READ_FLAGS, dir_fd=folder)
    opened = os.fstat(fd)
    if (opened.st_dev, opened.st_ino) != (info.st_dev, info.st_ino):
        os.close(fd)
        raise UnsafePath(f"{path}: was replaced while qtctl opened it")
    return fd


def _read_at(folder: int, name: str, path: str, max_bytes: int = 0) -> tuple[bytes, Snapshot]:
    fd = _open_plain(folder, name, path)
    try:
        chunks, size = [], 0
        while chunk := os.read(fd, 1 << 20):
            chunks.append(chunk)
            size += len(chunk)
            if max_bytes and size > max_bytes:
                raise UnsafePath(f"{path}: larger than {max_bytes} bytes; not read")
        data = b"".join(chunks)
        return data, _snapshot(fd, data)
    finally:
        os.close(fd)


def _snapshot(fd: int, data: bytes) -> Snapshot:
    info = os.fstat(fd)
    return Snapshot(
        info.st_dev,
        info.st_ino,
        info.st_size,
        sha256(data),
        stat.S_IMODE(info.st_mode),
        info.st_uid,
        info.st_gid,
        info.st_nlink,
    )


def _still(expect: Snapshot, current: Snapshot, path: str) -> None:
    if not expect.same_file(current):
        raise UnsafePath(f"{path}: changed since qtctl read it; left as it is")


SPECIAL = (
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISDIR, "a directory"),
)


def _refuse_special(folder: int, name: str, path: str) -> None:
    """A rename over a device, FIFO, socket or folder would replace it (`/dev/null` turned into
    a regular file for the whole host): only a regular file, a symlink or nothing is replaced."""
    try:
        info = os.stat(name, dir_fd=folder, follow_symlinks=False)
    except FileNotFoundError:
        return
    for test, kind in SPECIAL:
        if test(info.st_mode):
            raise UnsafePath(f"{path} is {kind}, not a regular file: not replaced")


def _write_at(
    folder: int,
    name: str,
    path: str,
    data: bytes,
    mode: int,
    owner: tuple[int, int] | None,
    expect: Snapshot | None,
) -> Snapshot:
    _refuse_special(folder, name, path)
    tmp = f".{name}.qtctl-{secrets.token_hex(4)}"
    fd = os.open(tmp, CREATE_FLAGS, 0o600, dir_fd=folder)
    try:
        _write_all(fd, data)
        os.fsync(fd)
        if owner is not None and os.geteuid() == 0:
            os.fchown(fd, *owner)
        os.fchmod(fd, mode & 0o777)
        written = _snapshot(fd, data)
    except BaseException:
        os.close(fd)
        _unlink_quietly(folder, tmp)
        raise
    os.close(fd)
    try:
        if expect is not None:
            _still(expect, _read_at(folder, name, path)[1], path)
        os.rename(tmp, name, src_dir_fd=folder, dst_dir_fd=folder)
    except BaseException:
        _unlink_quietly(folder, tmp)
        raise
    after = os.stat(name, dir_fd=folder, follow_symlinks=False)
    if (after.st_dev, after.st_ino) != (written.dev, written.ino):
        raise UnsafePath(f"{path}: the folder changed while qtctl wrote it; check it by hand")
    return written


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _unlink_quietly(folder: int, name: str) -> None:
    with suppress(OSError):
        os.unlink(name, dir_fd=folder)
