"""Where a report goes: a file written atomically under a lock, and optionally Redis."""

from __future__ import annotations

import errno
import fcntl
import os
import stat
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from qtctl.adapters import safe_files
from qtctl.errors import QtctlError

HEALTH_STREAM_MAXLEN = 10_000


class ReportBusy(QtctlError):
    """Another `qtctl report` holds the lock for the same output."""


KINDS = (
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISDIR, "a directory"),
)


def not_a_file(path: Path) -> str:
    """What the name is when writing a file there would replace something that is not a
    regular file ('' when it is one, or nothing, or a link to neither): a rename over
    /dev/null would turn the host's /dev/null into a regular file; a link to a device or to
    /proc/self/fd (`/dev/stdout`) counts as what it points to."""
    for info in (_stat(path, False), _stat(path, True)):
        for test, kind in KINDS:
            if info is not None and test(info.st_mode):
                return kind
    return ""


def _stat(path: Path, follow: bool) -> os.stat_result | None:
    try:
        return os.stat(path, follow_symlinks=follow)
    except (OSError, ValueError):
        return None


def write_atomic(path: Path, text: str, mode: int = 0o644) -> None:
    """Temp file created O_EXCL|O_NOFOLLOW in the same folder (through its fd), mode set on the
    fd, fsync, rename: readers see the old or the new report, never half of one, and a name the
    fleet user planted there is replaced, never followed; on failure the previous report stays."""
    try:
        safe_files.write_file(str(path.absolute()), text.encode("utf-8"), mode)
    except safe_files.UnsafePath as exc:
        raise QtctlError(f"cannot write the report to {path}: {exc}") from None
    except OSError as exc:
        raise QtctlError(
            f"cannot write the report to {path}: {_why(exc)}; the previous report is unchanged"
        ) from None


@contextmanager
def report_lock(lock_path: Path, wait_sec: float) -> Iterator[None]:
    """One report at a time per lock file: wait up to `wait_sec`, then give up cleanly. The lock
    is a plain file of ours, opened without following a symlink; anything else is refused."""
    fd = _open_lock(lock_path)
    deadline = time.monotonic() + wait_sec
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise ReportBusy(
                        f"another qtctl report holds {lock_path} (waited {wait_sec:g} s); "
                        "this run wrote nothing"
                    ) from None
                time.sleep(0.05)
        yield
    finally:
        os.close(fd)


def _open_lock(lock_path: Path) -> int:
    flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
    try:
        with safe_files.parent_of(str(lock_path.absolute())) as (folder, name):
            fd = os.open(name, flags, 0o600, dir_fd=folder)
    except safe_files.UnsafePath as exc:
        raise QtctlError(f"cannot open the report lock {lock_path}: {exc}") from None
    except OSError as exc:
        why = "it is a symlink" if exc.errno == errno.ELOOP else _why(exc)
        raise QtctlError(f"cannot open the report lock {lock_path}: {why}; refused") from None
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode) or info.st_uid != os.geteuid():
        os.close(fd)
        raise QtctlError(
            f"the report lock {lock_path} is not a plain file of uid {os.geteuid()} (uid "
            f"{info.st_uid}): refused; remove it if you know where it came from"
        )
    return fd


def publish(client: Any, key: str, stream: str, doc: dict[str, Any], status: str) -> None:
    """Store the latest report in a hash and append a summary to a capped stream."""
    import json

    summary = doc["summary"]
    fields = {
        "status": status,
        "generated_at": doc["generated_at"],
        "host": doc["host"],
        "errors": summary["error"],
        "warnings": summary["warning"],
        "info": summary["info"],
        "skipped": summary["checks_skipped"],
        "duration_sec": doc["duration_sec"],
    }
    pipe = client.pipeline(transaction=True)
    pipe.hset(key, mapping={**fields, "report": json.dumps(doc)})
    pipe.xadd(stream, fields, maxlen=HEALTH_STREAM_MAXLEN, approximate=True)
    pipe.execute()


def _why(exc: OSError) -> str:
    if exc.errno == errno.ENOSPC:
        return "no space left on the device"
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return f"not writable ({exc.strerror})"
    if exc.errno == errno.ENOENT:
        return "the folder does not exist"
    return exc.strerror or str(exc)
