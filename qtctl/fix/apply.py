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
from typing import Any, assert_never

from qtctl.adapters.redis_client import RedisAdapter
from qtctl.adapters.systemd import SystemdAdapter
from qtctl.diagnosis.line_endings import classify, to_lf, write_preserving
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
from qtctl.fix.changes import Change
from qtctl.fix.journal import FixJournal, FixRecord
from qtctl.fix.repair import Repair
from qtctl.fix.stream_repairs import apply_stream_action

log = logging.getLogger(__name__)
SETTLE_SEC = 10.0


def apply_repairs(
    repairs: Sequence[Repair],
    systemd: Callable[[], SystemdAdapter],
    journal: FixJournal,
    record: FixRecord | None = None,
    redis: Callable[[], RedisAdapter] | None = None,
) -> FixRecord:
    """Run every runnable repair in stage order (files, one reload, reset-failed, restarts)."""
    record = record or journal.start()
    actions = _order([a for r in repairs if r.runnable for a in r.actions])
    for action in actions:
        before = len(record.changes)
        if isinstance(action, StreamAction):
            try:
                apply_stream_action(action, redis, record, journal)
            except QtctlError as exc:  # one stream refused: the others still run
                log.warning("fix: %s", exc)
                record.add(Change.FAILED, action=action.describe(), error=str(exc))
        else:
            _apply(action, systemd, record, journal)
        _check_declared(action, record.changes[before:])
        journal.save(record)
    restarted = [a.unit for a in actions if isinstance(a, Restart)]
    for unit in restarted:
        _wait_settled(systemd(), unit)
    return record


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
            if os.path.islink(action.path) and not os.path.exists(action.path):
                os.unlink(action.path)
                record.add(Change.REMOVE_LINK, path=action.path, target=action.target)
        case WriteDropIn():
            previous = Path(action.path).read_text() if os.path.exists(action.path) else None
            if previous != action.content:
                write_atomic(action.path, action.content)
                record.add(Change.WRITE_FILE, path=action.path, previous=previous)
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
    if os.path.islink(path) or not os.path.isfile(path):
        record.add(Change.SKIPPED, path=path, reason="not a regular file")
        return
    with open(path, "rb") as handle:
        original = handle.read()
    if not classify(original).needs_fix:
        return  # already LF: running the same fix twice changes nothing
    backup = journal.backup(record, original)
    record.add(
        Change.CONVERT_LF, path=path, backup=backup, sha256=hashlib.sha256(original).hexdigest()
    )
    journal.save(record)  # the backup is on record before the file changes
    write_preserving(path, to_lf(original))


def _secure(action: SecureFile, record: FixRecord) -> None:
    """chown + chmod, the previous owner and mode on record first; a no-op when already so."""
    st = os.lstat(action.path)
    if stat.S_ISLNK(st.st_mode):
        record.add(Change.SKIPPED, path=action.path, reason="a symlink: secure its target by hand")
        return
    account = pwd.getpwnam(action.user)
    if (st.st_uid, stat.S_IMODE(st.st_mode)) == (account.pw_uid, action.mode):
        return
    record.add(
        Change.SECURE_FILE,
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
    kind = Change.PATCH_SOURCE if isinstance(action, PatchSource) else Change.REWRITE_FILE
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
