"""The fix journal's vocabulary: what an applied repair records, and what its undo records."""

from __future__ import annotations

from enum import IntEnum, StrEnum


class Stage(IntEnum):
    """When an action runs within one apply: file and stream changes first, restarts last."""

    CONTENT = 0  # files, links, streams
    MODE = 1  # chown/chmod after a rewrite, which keeps the old mode
    RELOAD = 2  # one daemon-reload after every unit file change
    RESET = 3  # reset-failed before the restart
    RESTART = 4  # restarts last, once everything they read is in place


class Change(StrEnum):
    """A change `fix --apply` journals; `fix --undo` dispatches on it exhaustively."""

    REMOVE_LINK = "remove-link"
    WRITE_FILE = "write-file"
    DAEMON_RELOAD = "daemon-reload"
    RESET_FAILED = "reset-failed"
    RESTART = "restart"
    CONVERT_LF = "convert-lf"
    PATCH_SOURCE = "patch-source"
    REWRITE_FILE = "rewrite-file"
    SECURE_FILE = "secure-file"
    TRIM_STREAM = "trim-stream"
    HAND_OVER = "hand-over"
    CREATE_GROUP = "create-group"
    DELETE_CONSUMER = "delete-consumer"
    MIGRATE_STREAM = "migrate-stream"
    ARCHIVE = "archive"
    QUARANTINE = "quarantine"
    SKIPPED = "skipped"  # looked, changed nothing (and says why)
    FAILED = "failed"  # refused or failed; the other actions still ran


class Undone(StrEnum):
    """What `fix --undo` journals in its own record."""

    RESTORE_LINK = "restore-link"
    RESTORE_FILE = "restore-file"
    RESTORE_MODE = "restore-mode"
    RESTORE_BYTES = "restore-bytes"
    RESTORE_ARCHIVE = "restore-archive"
    DESTROY_GROUP = "destroy-group"
    UNMIGRATE_STREAM = "unmigrate-stream"
    NOT_UNDOABLE = "not-undoable"
    DAEMON_RELOAD = "daemon-reload"
