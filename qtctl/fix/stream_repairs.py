"""Carry out and undo the Redis stream repairs (QT401, QT403, QT404, QT405, QT504), journaled."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, assert_never

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
    StreamAction,
    TrimStream,
)
from qtctl.fix.changes import Change, Undone
from qtctl.fix.journal import FixJournal, FixRecord

log = logging.getLogger(__name__)


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
        match action:
            case TrimStream():
                _trim(adapter.client, action, record, journal)
            case HandOver():
                _hand_over(adapter.client, action, record)
            case CreateGroup():
                _create_group(adapter.client, action, record)
            case DeleteConsumer():
                _delete_consumer(adapter.client, action, record)
            case QuarantineEntries():
                _quarantine(adapter.client, action, record, journal)
            case MigrateStream():
                _migrate(adapter.client, action, record, journal)
            case _:
                assert_never(action)


def _hand_over(client: Any, action: HandOver, record: FixRecord) -> None:
    claimed, left = hand_over(client, action.stream, action.group, action.dead, action.live)
    record.add(
        Change.HAND_OVER,
        stream=action.stream,
        group=action.group,
        dead=action.dead,
        live=action.live,
        claimed=claimed,
        left=left,
    )


def _delete_consumer(client: Any, action: DeleteConsumer, record: FixRecord) -> None:
    if delete_consumer_if_empty(client, action.stream, action.group, action.consumer):
        record.add(
            Change.DELETE_CONSUMER,
            stream=action.stream,
            group=action.group,
            consumer=action.consumer,
        )


def _quarantine(
    client: Any, action: QuarantineEntries, record: FixRecord, journal: FixJournal
) -> None:
    archive = journal.folder(record) / f"{key_filename(action.stream)}.quarantine.jsonl.gz"
    reasons = dict(action.reasons)
    archived = archive_entries(client, action.stream, list(reasons), archive)
    record.add(Change.ARCHIVE, stream=action.stream, archive=str(archive), entries=archived)
    journal.save(record)  # the archive is on record before anything is deleted
    moved, held = quarantine(client, action.stream, reasons)
    record.add(
        Change.QUARANTINE,
        stream=action.stream,
        into=f"{action.stream}:quarantine",
        moved=moved,
        held=held,
        archive=str(archive),
    )


def _trim(client: Any, action: TrimStream, record: FixRecord, journal: FixJournal) -> None:
    archive = journal.folder(record) / f"{key_filename(action.stream)}.jsonl.gz"
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
            Change.TRIM_STREAM,
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
    record.add(Change.CREATE_GROUP, stream=action.stream, group=action.group, id=action.start_id)


def _migrate(client: Any, action: MigrateStream, record: FixRecord, journal: FixJournal) -> None:
    if not client.exists(action.source):
        return  # already migrated and deleted
    workdir = journal.folder(record)
    try:
        result = migrate(client, action.source, action.target, workdir)
    except MigrationRefused as exc:
        raise QtctlError(f"not migrating {action.source}: {exc}") from None
    record.add(
        Change.MIGRATE_STREAM,
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


def undo_create_group(
    redis: Callable[[], RedisAdapter] | None, change: dict[str, Any], undo_record: FixRecord
) -> None:
    """Destroy a consumer group fix created."""
    _client(redis, change).xgroup_destroy(change["stream"], change["group"])
    undo_record.add(Undone.DESTROY_GROUP, stream=change["stream"], group=change["group"])


def undo_migration_change(
    redis: Callable[[], RedisAdapter] | None, change: dict[str, Any], undo_record: FixRecord
) -> None:
    """Remove the entries a migration added and restore its source from the archive."""
    removed, restored = undo_migration(_client(redis, change), change)
    undo_record.add(
        Undone.UNMIGRATE_STREAM,
        source=change["source"],
        target=change["target"],
        removed=removed,
        restored=restored,
    )


def _client(redis: Callable[[], RedisAdapter] | None, change: dict[str, Any]) -> Any:
    if redis is None:
        raise QtctlError(f"undoing {change['kind']} needs a Redis connection")
    return redis().client
