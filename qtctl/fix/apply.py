"""Carry out repairs through the adapters, journaling each change before the next one."""

from __future__ import annotations

import hashlib
import logging
import os
import pwd
import stat
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from qtctl.adapters.redis_client import RedisAdapter
from qtctl.adapters.systemd import SystemdAdapter
from qtctl.diagnosis.line_endings import classify, to_lf, write_preserving
from qtctl.errors import QtctlError
from qtctl.fix.actions import (
    Action,
    ConvertLF,
    CreateGroup,
    DaemonReload,
    DeleteConsumer,
    HandOver,
    MigrateStream,
    PatchSource,
    QuarantineEntries,
    RemoveLink,
    ResetFailed,
    Restart,
    RewriteFile,
    SecureFile,
    TrimStream,
    WriteDropIn,
)
from qtctl.fix.journal import FixJournal, FixRecord
from qtctl.fix.repair import Repair
from qtctl.fix.stream_repairs import STREAM_ACTIONS, apply_stream_action, undo_stream_change

log = logging.getLogger(__name__)
SETTLE_SEC = 10.0


def apply_repairs(
    repairs: Sequence[Repair],
    systemd: Callable[[], SystemdAdapter],
    journal: FixJournal,
    record: FixRecord | None = None,
    redis: Callable[[], RedisAdapter] | None = None,
) -> FixRecord:
    """Run every runnable repair; reloads are merged and restarts come last."""
    record = record or journal.start()
    actions = _order([a for r in repairs if r.runnable for a in r.actions])
    for action in actions:
        if isinstance(action, STREAM_ACTIONS):
            try:
                apply_stream_action(action, redis, record, journal)
            except QtctlError as exc:  # one stream refused: the others still run
                log.warning("fix: %s", exc)
                record.add("failed", action=action.describe(), error=str(exc))
        else:
            _apply(action, systemd, record, journal)
        journal.save(record)
    restarted = [a.unit for a in actions if isinstance(a, Restart)]
    for unit in restarted:
        _wait_settled(systemd(), unit)
    return record


def _order(actions: list[Action]) -> list[Action]:
    """Files first, one daemon-reload, reset-failed, restarts last; duplicates dropped."""
    rank = {
        PatchSource: 0,
        RemoveLink: 0,
        WriteDropIn: 0,
        ConvertLF: 0,
        TrimStream: 0,
        HandOver: 0,
        CreateGroup: 0,
        DeleteConsumer: 0,
        MigrateStream: 0,
        QuarantineEntries: 0,
        RewriteFile: 0,
        SecureFile: 1,  # after a rewrite, which keeps the old mode
        DaemonReload: 1,
        ResetFailed: 2,
        Restart: 3,
    }
    unique = list(dict.fromkeys(actions))
    return sorted(unique, key=lambda a: rank[type(a)])


def _apply(
    action: Action, systemd: Callable[[], SystemdAdapter], record: FixRecord, journal: FixJournal
) -> None:
    log.info("fix: %s", action.describe())
    if isinstance(action, ConvertLF):
        _convert(action.path, record, journal)
    elif isinstance(action, PatchSource | RewriteFile):
        _patch(action, record, journal)
    elif isinstance(action, SecureFile):
        _secure(action, record)
    elif isinstance(action, RemoveLink):
        if os.path.islink(action.path) and not os.path.exists(action.path):
            os.unlink(action.path)
            record.add("remove-link", path=action.path, target=action.target)
    elif isinstance(action, WriteDropIn):
        previous = Path(action.path).read_text() if os.path.exists(action.path) else None
        if previous != action.content:
            write_atomic(action.path, action.content)
            record.add("write-file", path=action.path, previous=previous)
    elif isinstance(action, DaemonReload):
        systemd().daemon_reload()
        record.add("daemon-reload")
    elif isinstance(action, ResetFailed):
        systemd().reset_failed(action.unit)
        record.add("reset-failed", unit=action.unit)
    elif isinstance(action, Restart):
        systemd().restart(action.unit)
        record.add("restart", unit=action.unit)


def _convert(path: str, record: FixRecord, journal: FixJournal) -> None:
    if os.path.islink(path) or not os.path.isfile(path):
        record.add("skipped", path=path, reason="not a regular file")
        return
    with open(path, "rb") as handle:
        original = handle.read()
    if not classify(original).needs_fix:
        return  # already LF: running the same fix twice changes nothing
    backup = journal.backup(record, original)
    record.add("convert-lf", path=path, backup=backup, sha256=hashlib.sha256(original).hexdigest())
    journal.save(record)  # the backup is on record before the file changes
    write_preserving(path, to_lf(original))


def _secure(action: SecureFile, record: FixRecord) -> None:
    """chown + chmod, the previous owner and mode on record first; a no-op when already so."""
    st = os.lstat(action.path)
    if stat.S_ISLNK(st.st_mode):
        record.add("skipped", path=action.path, reason="a symlink: secure its target by hand")
        return
    account = pwd.getpwnam(action.user)
    if (st.st_uid, stat.S_IMODE(st.st_mode)) == (account.pw_uid, action.mode):
        return
    record.add(
        "secure-file",
        path=action.path,
        previous_mode=stat.S_IMODE(st.st_mode),
        previous_uid=st.st_uid,
        previous_gid=st.st_gid,
    )
    os.chmod(action.path, action.mode)  # narrow first: never more readable on the way
    os.chown(action.path, account.pw_uid, account.pw_gid)


def _patch(action: PatchSource | RewriteFile, record: FixRecord, journal: FixJournal) -> None:
    original = Path(action.path).read_bytes()
    new = action.new_text.encode()
    if original == new:
        return
    backup = journal.backup(record, original)
    kind = "patch-source" if isinstance(action, PatchSource) else "rewrite-file"
    record.add(kind, path=action.path, backup=backup, sha256=hashlib.sha256(original).hexdigest())
    journal.save(record)
    write_preserving(action.path, new)


def write_atomic(path: str, content: str) -> None:
    """Write a file via a temporary sibling and rename, creating its directory."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.qtctl-tmp")
    tmp.write_text(content)
    tmp.chmod(0o644)
    os.replace(tmp, target)


def _wait_settled(systemd: SystemdAdapter, unit: str) -> None:
    """Give a restarted unit time to come up or fail, so the re-check tells the truth."""
    deadline = time.monotonic() + SETTLE_SEC
    stable_since = 0.0
    while time.monotonic() < deadline:
        state = systemd.unit_state(unit)
        if state in ("failed", "inactive"):
            return
        if state == "active":
            stable_since = stable_since or time.monotonic()
            if time.monotonic() - stable_since >= 1.0:
                return
        else:
            stable_since = 0.0
        time.sleep(0.1)


def undo(
    record: FixRecord,
    systemd: Callable[[], SystemdAdapter],
    journal: FixJournal,
    redis: Callable[[], RedisAdapter] | None = None,
) -> FixRecord:
    """Put back files and links of a fix record; restarts cannot be undone and are listed."""
    undo_record = journal.start()
    reload_needed = False
    for change in reversed(record.changes):
        kind = change["kind"]
        if kind == "remove-link" and not os.path.lexists(change["path"]):
            os.symlink(change["target"], change["path"])
            undo_record.add("restore-link", path=change["path"], target=change["target"])
            reload_needed = True
        elif kind == "write-file":
            if change["previous"] is None:
                if os.path.exists(change["path"]):
                    os.unlink(change["path"])
            else:
                write_atomic(change["path"], change["previous"])
            undo_record.add("restore-file", path=change["path"], undoes=record.id)
            reload_needed = True
        elif kind == "secure-file":
            os.chown(change["path"], change["previous_uid"], change["previous_gid"])
            os.chmod(change["path"], change["previous_mode"])
            undo_record.add("restore-mode", path=change["path"], undoes=record.id)
        elif kind in ("convert-lf", "patch-source", "rewrite-file"):
            write_preserving(change["path"], Path(change["backup"]).read_bytes())
            undo_record.add("restore-bytes", path=change["path"], undoes=record.id)
        elif undo_stream_change(change, redis, undo_record):
            pass
        elif kind in ("restart", "reset-failed"):
            undo_record.add("not-undoable", action=kind, unit=change["unit"])
    if reload_needed:
        systemd().daemon_reload()
        undo_record.add("daemon-reload")
    journal.save(undo_record)
    return undo_record
