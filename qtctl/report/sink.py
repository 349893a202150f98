"""Where a report goes: a file written atomically under a lock, and optionally Redis."""

from __future__ import annotations

import errno
import fcntl
import os
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from qtctl.errors import QtctlError

HEALTH_STREAM_MAXLEN = 10_000


class ReportBusy(QtctlError):
    """Another `qtctl report` holds the lock for the same output."""


def write_atomic(path: Path, text: str) -> None:
    """Temp file in the same folder, fsync, rename: readers see the old or the new report,
    never half of one; on any failure the previous report stays and the temp file is removed."""
    folder = path.parent
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    except OSError as exc:
        raise QtctlError(f"cannot write the report to {path}: {_why(exc)}") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except OSError as exc:
        _remove(tmp)
        raise QtctlError(
            f"cannot write the report to {path}: {_why(exc)}; the previous report is unchanged"
        ) from None


@contextmanager
def report_lock(lock_path: Path, wait_sec: float) -> Iterator[None]:
    """One report at a time per lock file: wait up to `wait_sec`, then give up cleanly."""
    try:
        handle = open(lock_path, "a+")  # noqa: SIM115 - held for the duration of the block
    except OSError as exc:
        raise QtctlError(f"cannot open the report lock {lock_path}: {_why(exc)}") from None
    deadline = time.monotonic() + wait_sec
    try:
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
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
        handle.close()


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


def _remove(path: str) -> None:
    with suppress(OSError):
        os.unlink(path)


def _why(exc: OSError) -> str:
    if exc.errno == errno.ENOSPC:
        return "no space left on the device"
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return f"not writable ({exc.strerror})"
    if exc.errno == errno.ENOENT:
        return "the folder does not exist"
    return exc.strerror or str(exc)
