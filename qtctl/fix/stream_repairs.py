"""Carry out and undo the Redis stream repairs (QT401, QT403, QT404, QT405), journaled."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from qtctl.adapters.redis_client import RedisAdapter, text
from qtctl.adapters.stream_archive import (
    delete_consumer_if_empty,
    hand_over,
    key_filename,
    trim_with_archive,
)
from qtctl.adapters.stream_migrate import MigrationRefused, migrate, undo_migration
from qtctl.adapters.stream_quarantine import archive_entries, quarantine
from qtctl.errors import QtctlError
from qtctl.fix.actions import (
    CreateGroup,
    DeleteConsumer,
    HandOver,
    MigrateStream,
    QuarantineEntries,
    TrimStream,
)
from qtctl.fix.journal import FixJournal, FixRecord

log = logging.getLogger(__name__)
StreamAction = (
    TrimStream | HandOver | CreateGroup | DeleteConsumer | MigrateStream | QuarantineEntries
)
STREAM_ACTIONS = (
    TrimStream, HandOver, CreateGroup, DeleteConsumer, MigrateStream, QuarantineEntries
)


def apply_stream_action(
    action: StreamAction,
    redis: Callable[[], RedisAdapter] | None,
    record: FixRecord,
    journal: FixJournal,
) -> None:
    """Run one stream action and record what it changed."""
    if redis is None:
        raise QtctlError(f"{action.describe()}: needs a Redis connection")
    adapter = redis()
    log.info("fix: %s", action.describe())
    with adapter.guard(action.describe().split(";")[0]):
        if isinstance(action, TrimStream):
            _trim(adapter.client, action, record, journal)
        elif isinstance(action, HandOver):
            claimed, left = hand_over(
                adapter.client, action.stream, action.group, action.dead, action.live
            )
            record.add(
                "hand-over",
                stream=action.stream,
                group=action.group,
                dead=action.dead,
                live=action.live,
                claimed=claimed,
                left=left,
            )
        elif isinstance(action, CreateGroup):
            _create_group(adapter.client, action, record)
        elif isinstance(action, DeleteConsumer):
            if delete_consumer_if_empty(
                adapter.client, action.stream, action.group, action.consumer
            ):
                record.add(
                    "delete-consumer",
                    stream=action.stream,
                    group=action.group,
                    consumer=action.consumer,
                )
        elif isinstance(action, QuarantineEntries):
            _quarantine(adapter.client, action, record, journal)
        else:
            _migrate(adapter.client, action, record, journal)


def _quarantine(
    client: Any, action: QuarantineEntries, record: FixRecord, journal: FixJournal
) -> None:
    archive = journal.root / record.id / f"{key_filename(action.stream)}.quarantine.jsonl.gz"
    reasons = dict(action.reasons)
    archived = archive_entries(client, action.stream, list(reasons), archive)
    record.add("archive", stream=action.stream, archive=str(archive), entries=archived)
    journal.save(record)  # the archive is on record before anything is deleted
    moved, held = quarantine(client, action.stream, reasons)
    record.add(
        "quarantine",
        stream=action.stream,
        into=f"{action.stream}:quarantine",
        moved=moved,
        held=held,
        archive=str(archive),
    )


def _trim(client: Any, action: TrimStream, record: FixRecord, journal: FixJournal) -> None:
    archive = journal.root / record.id / f"{key_filename(action.stream)}.jsonl.gz"
    result = trim_with_archive(
        client,
        action.stream,
        action.keep,
        archive,
        max_age_ms=int(action.max_age_sec * 1000),
        now_ms=int(time.time() * 1000),
    )
    if result:
        record.add(
            "trim-stream",
            stream=action.stream,
            archive=result.archive,
            archived=result.archived,
            removed=result.removed,
            first=result.first_id,
            last=result.last_id,
        )


def _create_group(client: Any, action: CreateGroup, record: FixRecord) -> None:
    if client.type(action.stream) != "stream":
        raise QtctlError(f"{action.stream} is not a stream: not creating group {action.group}")
    if any(text(g["name"]) == action.group for g in client.xinfo_groups(action.stream)):
        return  # already there: running the same fix twice changes nothing
    client.xgroup_create(action.stream, action.group, id=action.start_id)
    record.add("create-group", stream=action.stream, group=action.group, id=action.start_id)


def _migrate(client: Any, action: MigrateStream, record: FixRecord, journal: FixJournal) -> None:
    if not client.exists(action.source):
        return  # already migrated and deleted
    workdir = journal.root / record.id
    try:
        result = migrate(client, action.source, action.target, workdir)
    except MigrationRefused as exc:
        raise QtctlError(f"not migrating {action.source}: {exc}") from None
    record.add(
        "migrate-stream",
        source=result.source,
        target=result.target,
        moved=result.moved,
        already_there=result.already_there,
        rebuilt=result.rebuilt,
        source_archive=result.source_archive,
        target_archive=result.target_archive,
        added_ids=result.added_ids,
        source_deleted=result.source_deleted,
    )


def undo_stream_change(
    change: dict[str, Any], redis: Callable[[], RedisAdapter] | None, undo_record: FixRecord
) -> bool:
    """Reverse one journaled stream change where Redis allows; False if not a stream change."""
    kind = change["kind"]
    if kind in ("trim-stream", "quarantine"):
        kept = f"the entries are in {change['into']} and the archive; " if "into" in change else ""
        undo_record.add(
            "restore-archive",
            stream=change["stream"],
            archive=change["archive"],
            hint=f"{kept}qtctl streams restore {change['archive']} --into KEY "
            "(Redis cannot insert old IDs before newer ones)",
        )
    elif kind == "archive":
        pass  # the quarantine entry that follows it says how to get the entries back
    elif kind == "hand-over":
        undo_record.add("not-undoable", action=kind, unit=change["dead"])
    elif kind == "delete-consumer":
        undo_record.add("not-undoable", action=kind, unit=change["consumer"])
    elif kind in ("create-group", "migrate-stream"):
        if redis is None:
            raise QtctlError(f"undoing {kind} needs a Redis connection")
        client = redis().client
        if kind == "create-group":
            client.xgroup_destroy(change["stream"], change["group"])
            undo_record.add("destroy-group", stream=change["stream"], group=change["group"])
        else:
            removed, restored = undo_migration(client, change)
            undo_record.add(
                "unmigrate-stream",
                source=change["source"],
                target=change["target"],
                removed=removed,
                restored=restored,
            )
    else:
        return False
    return True
