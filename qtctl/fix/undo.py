"""`qtctl fix --undo`: put back what a fix record changed, one journaled change at a time.

The dispatch is exhaustive over `Change` (mypy fails when a new change kind is not handled);
what cannot be undone (a restart, redelivered entries) is listed as such in the undo record.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, assert_never

from qtctl.adapters import safe_files
from qtctl.adapters.redis_client import RedisAdapter
from qtctl.adapters.safe_files import private_umask
from qtctl.adapters.systemd import SystemdAdapter
from qtctl.errors import UsageError
from qtctl.fix.apply import write_atomic
from qtctl.fix.changes import Change, Undone
from qtctl.fix.journal import FixJournal, FixRecord
from qtctl.fix.stream_repairs import undo_create_group, undo_migration_change


def undo(
    record: FixRecord,
    systemd: Callable[[], SystemdAdapter],
    journal: FixJournal,
    redis: Callable[[], RedisAdapter] | None = None,
) -> FixRecord:
    """Put back files, links, modes and groups of a fix record; the rest is listed."""
    undo_record = dataclasses.replace(journal.start(), undoes=record.id)
    reload_needed = False
    try:
        for change in reversed(record.changes):
            kind = _kind(change)
            if kind is None:
                continue  # an undo record's own entries: nothing of fix's to put back
            with private_umask():
                undone = _undo_one(kind, change, record, undo_record, journal, redis)
            reload_needed = undone or reload_needed
    finally:  # what was put back before a refusal stays on record
        if reload_needed:
            systemd().daemon_reload()
            undo_record.add(Undone.DAEMON_RELOAD)
        if undo_record.changes:  # an undo that put nothing back leaves no record to confuse LAST
            journal.save(undo_record)
    return undo_record


def _kind(change: dict[str, Any]) -> Change | None:
    try:
        return Change(change["kind"])
    except ValueError:
        return None


def _undo_one(
    kind: Change,
    change: dict[str, Any],
    record: FixRecord,
    undo_record: FixRecord,
    journal: FixJournal,
    redis: Callable[[], RedisAdapter] | None,
) -> bool:
    """Undo one change; True when a unit file or link was put back (a daemon-reload is due)."""
    match kind:
        case Change.REMOVE_LINK:
            if safe_files.restore_link(change["path"], change["target"]):
                undo_record.add(Undone.RESTORE_LINK, path=change["path"], target=change["target"])
                return True
        case Change.WRITE_FILE:
            _restore_written(change)
            undo_record.add(Undone.RESTORE_FILE, path=change["path"], undoes=record.id)
            return True
        case Change.SECURE_FILE:
            _restore_mode(change)
            undo_record.add(Undone.RESTORE_MODE, path=change["path"], undoes=record.id)
        case Change.CONVERT_LF | Change.PATCH_SOURCE | Change.REWRITE_FILE:
            _restore_bytes(change, journal.read_backup(record, change["backup"]))
            undo_record.add(Undone.RESTORE_BYTES, path=change["path"], undoes=record.id)
        case Change.TRIM_STREAM | Change.QUARANTINE:
            kept = (
                f"the entries are in {change['into']} and the archive; " if "into" in change else ""
            )
            undo_record.add(
                Undone.RESTORE_ARCHIVE,
                stream=change["stream"],
                archive=change["archive"],
                hint=f"{kept}qtctl streams restore {change['archive']} --into KEY "
                "(Redis cannot insert old IDs before newer ones)",
            )
        case Change.CREATE_GROUP:
            undo_create_group(redis, change, undo_record)
        case Change.MIGRATE_STREAM:
            undo_migration_change(redis, change, undo_record)
        case Change.HAND_OVER:
            undo_record.add(Undone.NOT_UNDOABLE, action=kind, unit=change["dead"])
        case Change.DELETE_CONSUMER:
            undo_record.add(Undone.NOT_UNDOABLE, action=kind, unit=change["consumer"])
        case Change.RESTART | Change.RESET_FAILED:
            undo_record.add(Undone.NOT_UNDOABLE, action=kind, unit=change["unit"])
        case Change.ARCHIVE | Change.DAEMON_RELOAD | Change.SKIPPED | Change.FAILED:
            pass  # nothing changed, or undo reloads itself; the quarantine entry says the rest
        case _:
            assert_never(kind)
    return False


def _restore_bytes(change: dict[str, Any], original: bytes) -> None:
    """Put the original bytes back, only over exactly what fix wrote (a later edit is kept)."""
    path = change["path"]
    _, snapshot = safe_files.read_file(path)
    if snapshot.sha256 == change["sha256"]:
        return  # it holds the original again: undone already
    _unchanged_since_fix(change, snapshot.sha256)
    if safe_files.sha256(original) != change["sha256"]:
        raise UsageError(f"{change['backup']} is not the backup fix recorded for {path}")
    safe_files.replace_file(path, original, snapshot)


def _restore_written(change: dict[str, Any]) -> None:
    path, previous = change["path"], change["previous"]
    try:
        snapshot = safe_files.read_file(path)[1]
    except (safe_files.UnsafePath, FileNotFoundError):
        snapshot = None
    if snapshot is not None and previous is not None and snapshot.sha256 == _sha(previous):
        return  # it holds the previous content again: undone already
    if snapshot is not None:
        _unchanged_since_fix(change, snapshot.sha256)
    if previous is None:
        if snapshot is not None:
            safe_files.remove_file(path, snapshot.sha256)
    else:
        write_atomic(path, previous)


def _restore_mode(change: dict[str, Any]) -> None:
    """The previous owner and mode, through an O_NOFOLLOW fd on the inode fix changed; never
    setuid, setgid or sticky, whatever the record says."""
    expect = (change["dev"], change["ino"]) if "ino" in change else None
    if expect is None:
        raise UsageError(f"{change['path']}: the record names no inode; restore its mode by hand")
    mode = int(change["previous_mode"]) & 0o777
    uid, gid = int(change["previous_uid"]), int(change["previous_gid"])
    current = safe_files.read_file(change["path"])[1]
    if (current.uid, current.gid, current.mode) == (uid, gid, mode):
        return  # undone already (a later undo of a rewrite may have replaced the inode since)
    safe_files.secure_file(change["path"], uid, gid, mode, expect)


def _unchanged_since_fix(change: dict[str, Any], sha256: str) -> None:
    if change.get("written") != sha256:
        raise UsageError(
            f"{change['path']} changed since fix wrote it (or the record does not say what it "
            "wrote): undo stops here rather than overwrite a later edit"
        )


def _sha(text: str) -> str:
    return safe_files.sha256(text.encode())
