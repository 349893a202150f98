"""Carry out repairs through the adapters, journaling each change before the next one."""

from __future__ import annotations

import logging
import pwd
import time
from collections.abc import Callable, Sequence
from typing import Any, assert_never

from qtctl.adapters import safe_files
from qtctl.adapters.redis_client import RedisAdapter
from qtctl.adapters.safe_files import private_umask
from qtctl.adapters.systemd import SystemdAdapter
from qtctl.config import FixSettings
from qtctl.diagnosis.line_endings import classify, to_lf
from qtctl.errors import QtctlError
from qtctl.fix.actions import (
    Action,
    ConvertLF,
    DaemonReload,
    HostAction,
    PatchSource,
    RemoveLink,
    ResetFailed,
    Restart,
    RewriteFile,
    SecureFile,
    StreamAction,
    WriteDropIn,
)
from qtctl.fix.budget import LedgerRefused, RestartLedger
from qtctl.fix.changes import Change
from qtctl.fix.journal import FixJournal, FixRecord
from qtctl.fix.repair import Repair
from qtctl.fix.settle import settle
from qtctl.fix.stream_repairs import apply_stream_action

log = logging.getLogger(__name__)
MAX_CONVERT_BYTES = 50 * 2**20  # the code scan's default code.max_file_mb


def apply_repairs(
    repairs: Sequence[Repair],
    systemd: Callable[[], SystemdAdapter],
    journal: FixJournal,
    record: FixRecord | None = None,
    redis: Callable[[], RedisAdapter] | None = None,
    settings: FixSettings | None = None,
    settled: dict[str, str] | None = None,
) -> FixRecord:
    """Run every runnable repair in stage order (files, one reload, reset-failed, restarts),
    then watch each restarted unit settle; `settled` receives unit -> '' when it stayed up past
    its RestartSec= + fix.settle_sec, else what systemd saw."""
    settings = settings or FixSettings(state_dir=str(journal.state))
    record = record or journal.start()
    actions = _order([a for r in repairs if r.runnable for a in r.actions])
    before = len(record.changes)
    with private_umask():  # backups, records and stream archives: root's only from the start
        _apply_all(actions, systemd, journal, record, redis)
    restarted = [c["unit"] for c in record.changes[before:] if c["kind"] == Change.RESTART]
    _ledger(settings, restarted, record, journal)
    if restarted:
        watched = settle(systemd(), restarted, settings.settle_sec)
        if settled is not None:
            settled.update(watched)
    return record


def _ledger(
    settings: FixSettings, units: list[str], record: FixRecord, journal: FixJournal
) -> None:
    """Count the restarts for the rate limit; a ledger that cannot be written is on record."""
    try:
        RestartLedger(settings).add(units, time.time())
    except (LedgerRefused, OSError, safe_files.UnsafePath) as exc:
        record.add(Change.FAILED, action="record restarts for fix.restart_limit", error=str(exc))
        journal.save(record)


def _apply_all(
    actions: list[Action],
    systemd: Callable[[], SystemdAdapter],
    journal: FixJournal,
    record: FixRecord,
    redis: Callable[[], RedisAdapter] | None,
) -> None:
    for action in actions:
        before = len(record.changes)
        try:
            if isinstance(action, StreamAction):
                apply_stream_action(action, redis, record, journal)
            else:
                _apply(action, systemd, record, journal)
        except QtctlError as exc:  # one action refused: the others still run
            log.warning("fix: %s", exc)
            record.add(Change.FAILED, action=action.describe(), error=str(exc))
        _check_declared(action, record.changes[before:])
        journal.save(record)


def _order(actions: list[Action]) -> list[Action]:
    """By each action's declared stage, keeping report order within a stage; duplicates
    dropped."""
    return sorted(dict.fromkeys(actions), key=lambda a: a.stage)


def _check_declared(action: Action, changes: list[dict[str, Any]]) -> None:
    """An action journals only what it declares (undo relies on the declaration)."""
    allowed = {*action.records, Change.FAILED, Change.SKIPPED}
    stray = [c["kind"] for c in changes if c["kind"] not in allowed]
    assert not stray, f"{type(action).__name__} journaled undeclared {stray}"


def _apply(
    action: HostAction,
    systemd: Callable[[], SystemdAdapter],
    record: FixRecord,
    journal: FixJournal,
) -> None:
    log.info("fix: %s", action.describe())
    match action:
        case ConvertLF():
            _convert(action.path, record, journal)
        case PatchSource() | RewriteFile():
            _patch(action, record, journal)
        case SecureFile():
            _secure(action, record)
        case RemoveLink():
            target = safe_files.remove_dangling_link(action.path)
            if target is not None:
                record.add(Change.REMOVE_LINK, path=action.path, target=target)
        case WriteDropIn():
            _write_drop_in(action, record)
        case DaemonReload():
            systemd().daemon_reload()
            record.add(Change.DAEMON_RELOAD)
        case ResetFailed():
            systemd().reset_failed(action.unit)
            record.add(Change.RESET_FAILED, unit=action.unit)
        case Restart():
            systemd().restart(action.unit)
            record.add(Change.RESTART, unit=action.unit)
        case _:
            assert_never(action)


def _convert(path: str, record: FixRecord, journal: FixJournal) -> None:
    try:  # bounded: a file swapped for a huge one is refused before any backup is written
        original, snapshot = safe_files.read_file(path, MAX_CONVERT_BYTES)
    except (safe_files.UnsafePath, OSError) as exc:
        record.add(Change.SKIPPED, path=path, reason=f"not converted: {exc}")
        return
    if not classify(original).needs_fix:
        return  # already LF: running the same fix twice changes nothing
    _replace(Change.CONVERT_LF, path, original, snapshot, to_lf(original), record, journal)


def _patch(action: PatchSource | RewriteFile, record: FixRecord, journal: FixJournal) -> None:
    original, snapshot = safe_files.read_file(action.path)
    new = action.new_text.encode()
    if original == new:
        return
    kind = Change.PATCH_SOURCE if isinstance(action, PatchSource) else Change.REWRITE_FILE
    _replace(kind, action.path, original, snapshot, new, record, journal)


def _replace(
    kind: Change,
    path: str,
    original: bytes,
    snapshot: safe_files.Snapshot,
    new: bytes,
    record: FixRecord,
    journal: FixJournal,
) -> None:
    """Back up, journal, then replace the file only if it is still the one read."""
    backup = journal.backup(record, original)
    record.add(
        kind, path=path, backup=backup, sha256=snapshot.sha256, written=safe_files.sha256(new)
    )
    journal.save(record)  # the backup is on record before the file changes
    try:
        safe_files.replace_file(path, new, snapshot)
    except BaseException:
        record.changes.pop()  # nothing was replaced: there is nothing to undo
        raise


def _secure(action: SecureFile, record: FixRecord) -> None:
    """fchmod + fchown through an O_NOFOLLOW fd, the previous owner and mode on record first;
    a no-op when already so."""
    account = pwd.getpwnam(action.user)
    try:
        _, before = safe_files.read_file(action.path)
    except safe_files.UnsafePath as exc:
        record.add(Change.SKIPPED, path=action.path, reason=f"not secured: {exc}")
        return
    if (before.uid, before.mode) == (account.pw_uid, action.mode):
        return
    record.add(
        Change.SECURE_FILE,
        path=action.path,
        previous_mode=before.mode,
        previous_uid=before.uid,
        previous_gid=before.gid,
        dev=before.dev,
        ino=before.ino,
    )
    try:
        safe_files.secure_file(
            action.path, account.pw_uid, account.pw_gid, action.mode, (before.dev, before.ino)
        )
    except BaseException:
        record.changes.pop()  # refused before any change: nothing to undo
        raise


def _write_drop_in(action: WriteDropIn, record: FixRecord) -> None:
    try:
        previous: str | None = safe_files.read_file(action.path)[0].decode(errors="replace")
    except (safe_files.UnsafePath, FileNotFoundError):
        previous = None  # absent (a symlink or odd file there is replaced, never followed)
    if previous == action.content:
        return
    write_atomic(action.path, action.content)
    written = safe_files.sha256(action.content.encode())
    record.add(Change.WRITE_FILE, path=action.path, previous=previous, written=written)


def write_atomic(path: str, content: str) -> None:
    """A unit file or drop-in (mode 644), written without following any planted name."""
    safe_files.write_file(path, content.encode(), 0o644, (0, 0))
