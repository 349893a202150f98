"""`qtctl fix --undo`: put back what a fix record changed, one journaled change at a time.

The dispatch is exhaustive over `Change` (mypy fails when a new change kind is not handled);
what cannot be undone (a restart, redelivered entries) is listed as such in the undo record.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, assert_never

from qtctl.adapters.redis_client import RedisAdapter
from qtctl.adapters.systemd import SystemdAdapter
from qtctl.diagnosis.line_endings import write_preserving
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
    undo_record = journal.start()
    reload_needed = False
    for change in reversed(record.changes):
        kind = _kind(change)
        if kind is None:
            continue  # an undo record's own entries: nothing of fix's to put back
        reload_needed = _undo_one(kind, change, record, undo_record, redis) or reload_needed
    if reload_needed:
        systemd().daemon_reload()
        undo_record.add(Undone.DAEMON_RELOAD)
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
    redis: Callable[[], RedisAdapter] | None,
) -> bool:
    """Undo one change; True when a unit file or link was put back (a daemon-reload is due)."""
    match kind:
        case Change.REMOVE_LINK:
            if not os.path.lexists(change["path"]):
                os.symlink(change["target"], change["path"])
                undo_record.add(Undone.RESTORE_LINK, path=change["path"], target=change["target"])
                return True
        case Change.WRITE_FILE:
            if change["previous"] is None:
                if os.path.exists(change["path"]):
                    os.unlink(change["path"])
            else:
                write_atomic(change["path"], change["previous"])
            undo_record.add(Undone.RESTORE_FILE, path=change["path"], undoes=record.id)
            return True
        case Change.SECURE_FILE:
            os.chown(change["path"], change["previous_uid"], change["previous_gid"])
            os.chmod(change["path"], change["previous_mode"])
            undo_record.add(Undone.RESTORE_MODE, path=change["path"], undoes=record.id)
        case Change.CONVERT_LF | Change.PATCH_SOURCE | Change.REWRITE_FILE:
            write_preserving(change["path"], Path(change["backup"]).read_bytes())
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
