"""The few things fix ever does to a host, each described exactly as a shell command would read.

Every action declares its `stage` (when it runs within one apply), the journal `records` it
writes, and `undo`: how `qtctl fix --undo` reverts it, or why it cannot. Apply and undo dispatch
on these types with `match` + `assert_never`, so mypy fails when one is not handled.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from typing import ClassVar

from qtctl.escaping import printable
from qtctl.fix.changes import Change, Stage


def _arg(name: str) -> str:
    """A name as one shell word: non-printables escaped, quoted where a shell would read it."""
    return shlex.quote(printable(name))


def _args(*names: str) -> str:
    return " ".join(_arg(name) for name in names)


@dataclass(frozen=True)
class RemoveLink:
    """Delete a dangling unit symlink (its target is recorded for undo)."""

    stage: ClassVar[Stage] = Stage.CONTENT
    records: ClassVar[tuple[Change, ...]] = (Change.REMOVE_LINK,)
    undo: ClassVar[str] = "the symlink is put back, pointing where it pointed"

    path: str
    target: str

    def describe(self) -> str:
        """The command an operator would type."""
        return f"rm {_arg(self.path)}    # dangling -> {_arg(self.target)}"


@dataclass(frozen=True)
class WriteDropIn:
    """Write a drop-in file; the previous content (or its absence) is backed up."""

    stage: ClassVar[Stage] = Stage.CONTENT
    records: ClassVar[tuple[Change, ...]] = (Change.WRITE_FILE,)
    undo: ClassVar[str] = "the previous content is written back, or the file removed"

    path: str
    content: str

    def describe(self) -> str:
        """The file and its content."""
        lines = self.content.rstrip("\n").split("\n")  # its own newlines, each line escaped
        body = "\n        ".join(printable(line) for line in lines)
        return f"write {_arg(self.path)}:\n        {body}"


@dataclass(frozen=True)
class DaemonReload:
    """`systemctl daemon-reload`."""

    stage: ClassVar[Stage] = Stage.RELOAD
    records: ClassVar[tuple[Change, ...]] = (Change.DAEMON_RELOAD,)
    undo: ClassVar[str] = "undo reloads again after putting unit files back"

    def describe(self) -> str:
        """The command."""
        return "systemctl daemon-reload"


@dataclass(frozen=True)
class ResetFailed:
    """`systemctl reset-failed UNIT`."""

    stage: ClassVar[Stage] = Stage.RESET
    records: ClassVar[tuple[Change, ...]] = (Change.RESET_FAILED,)
    undo: ClassVar[str] = "not undoable: a cleared failed state cannot be set again"

    unit: str

    def describe(self) -> str:
        """The command."""
        return f"systemctl reset-failed {_arg(self.unit)}"


@dataclass(frozen=True)
class Restart:
    """`systemctl restart UNIT`: disruptive, needs --unsafe and passes the safety rules."""

    stage: ClassVar[Stage] = Stage.RESTART
    records: ClassVar[tuple[Change, ...]] = (Change.RESTART,)
    undo: ClassVar[str] = "not undoable: a restart cannot be taken back"

    unit: str

    def describe(self) -> str:
        """The command."""
        return f"systemctl restart {_arg(self.unit)}"


@dataclass(frozen=True)
class ConvertLF:
    """Rewrite a text file with LF endings (and no BOM before its shebang), backed up."""

    stage: ClassVar[Stage] = Stage.CONTENT
    records: ClassVar[tuple[Change, ...]] = (Change.CONVERT_LF, Change.SKIPPED)
    undo: ClassVar[str] = "the original bytes are written back from the backup"

    path: str

    def describe(self) -> str:
        """The equivalent command."""
        return f"convert {_arg(self.path)} to LF (mode and owner kept, original backed up)"


@dataclass(frozen=True)
class PatchSource:
    """Replace a service source file with a proven patch (the diff is shown in the plan)."""

    stage: ClassVar[Stage] = Stage.CONTENT
    records: ClassVar[tuple[Change, ...]] = (Change.PATCH_SOURCE,)
    undo: ClassVar[str] = "the original bytes are written back from the backup"

    path: str
    new_text: str

    def describe(self) -> str:
        """What happens."""
        return f"patch {_arg(self.path)} (diff below; original backed up)"


@dataclass(frozen=True)
class TrimStream:
    """Archive a stream's oldest entries beyond `keep`, then remove exactly those."""

    stage: ClassVar[Stage] = Stage.CONTENT
    records: ClassVar[tuple[Change, ...]] = (Change.TRIM_STREAM,)
    undo: ClassVar[str] = (
        "not in place (Redis cannot insert old IDs before newer ones): undo names the "
        "archive and `qtctl streams restore`"
    )

    stream: str
    keep: int
    max_age_sec: float = 0.0

    def describe(self) -> str:
        """The equivalent commands."""
        age = f" and older than {self.max_age_sec:g} s" if self.max_age_sec else ""
        return (
            f"archive the entries of {_arg(self.stream)} beyond the newest {self.keep}{age} "
            f"(gzip JSONL), then XTRIM {_arg(self.stream)} MINID <first kept id>"
        )


@dataclass(frozen=True)
class HandOver:
    """Move a dead consumer's pending entries to a live one, then delete the dead consumer."""

    stage: ClassVar[Stage] = Stage.CONTENT
    records: ClassVar[tuple[Change, ...]] = (Change.HAND_OVER,)
    undo: ClassVar[str] = "not undoable: the entries were delivered to the live consumer"

    stream: str
    group: str
    dead: str
    live: str

    def describe(self) -> str:
        """The equivalent commands."""
        return (
            f"XCLAIM the pending entries of {_arg(self.dead)} in {_arg(self.stream)} group "
            f"{_arg(self.group)} for {_arg(self.live)}; "
            f"XGROUP DELCONSUMER {_args(self.stream, self.group, self.dead)}"
        )


@dataclass(frozen=True)
class CreateGroup:
    """Create a missing consumer group at an explicit ID (never MKSTREAM)."""

    stage: ClassVar[Stage] = Stage.CONTENT
    records: ClassVar[tuple[Change, ...]] = (Change.CREATE_GROUP,)
    undo: ClassVar[str] = "the group is destroyed"

    stream: str
    group: str
    start_id: str

    def describe(self) -> str:
        """The command."""
        return f"XGROUP CREATE {_args(self.stream, self.group, self.start_id)}"


@dataclass(frozen=True)
class DeleteConsumer:
    """Delete an idle consumer, atomically checked to hold no pending entries."""

    stage: ClassVar[Stage] = Stage.CONTENT
    records: ClassVar[tuple[Change, ...]] = (Change.DELETE_CONSUMER,)
    undo: ClassVar[str] = "not undoable: it held nothing, and a reader recreates its name"

    stream: str
    group: str
    consumer: str

    def describe(self) -> str:
        """The command."""
        return (
            f"XGROUP DELCONSUMER {_args(self.stream, self.group, self.consumer)}    "
            "# only if it still holds nothing"
        )


@dataclass(frozen=True)
class MigrateStream:
    """Move a misnamed stream's entries into the expected one (IDs kept), then delete it."""

    stage: ClassVar[Stage] = Stage.CONTENT
    records: ClassVar[tuple[Change, ...]] = (Change.MIGRATE_STREAM,)
    undo: ClassVar[str] = (
        "the copied entries are removed from the target and the source is restored from its archive"
    )

    source: str
    target: str

    def describe(self) -> str:
        """What happens, in order."""
        return (
            f"archive {_arg(self.source)}; copy its entries into {_arg(self.target)} with their "
            "IDs, in order, skipping IDs already there; verify every one is there; "
            f"DEL {_arg(self.source)} "
            "if it did not grow meanwhile"
        )


@dataclass(frozen=True)
class SecureFile:
    """chown a file to its one reader and make it mode 600 (previous owner and mode recorded)."""

    stage: ClassVar[Stage] = Stage.MODE
    records: ClassVar[tuple[Change, ...]] = (Change.SECURE_FILE, Change.SKIPPED)
    undo: ClassVar[str] = "the previous owner and mode are set back"

    path: str
    user: str
    mode: int = 0o600

    def describe(self) -> str:
        """The equivalent commands."""
        path = _arg(self.path)
        return f"chown {_arg(self.user + ':')} {path} && chmod {self.mode:o} {path}"


@dataclass(frozen=True)
class RewriteFile:
    """Replace a config file's text with a proven rewrite (diff in the plan; original kept)."""

    stage: ClassVar[Stage] = Stage.CONTENT
    records: ClassVar[tuple[Change, ...]] = (Change.REWRITE_FILE,)
    undo: ClassVar[str] = "the original bytes are written back from the backup"

    path: str
    new_text: str
    why: str

    def describe(self) -> str:
        """What happens."""
        return f"rewrite {_arg(self.path)} ({printable(self.why)}; diff below; original backed up)"


@dataclass(frozen=True)
class QuarantineEntries:
    """Archive chosen stream entries, copy them to `<stream>:quarantine`, then XDEL them."""

    stage: ClassVar[Stage] = Stage.CONTENT
    records: ClassVar[tuple[Change, ...]] = (Change.ARCHIVE, Change.QUARANTINE)
    undo: ClassVar[str] = (
        "not in place: the entries stay in `<stream>:quarantine` and the archive, and undo "
        "names `qtctl streams restore`"
    )

    stream: str
    reasons: tuple[tuple[str, str], ...]  # (entry id, why)

    def describe(self) -> str:
        """The equivalent commands."""
        return (
            f"archive {len(self.reasons)} entries of {_arg(self.stream)} (gzip JSONL), XADD each "
            f"to {_arg(self.stream + ':quarantine')} with its reason, XDEL it from "
            f"{_arg(self.stream)} (not if a "
            "group still has it pending)"
        )


# Actions on the host (files, links, systemd) and on Redis streams: one union each, and `Action`.
HostAction = (
    RemoveLink
    | WriteDropIn
    | DaemonReload
    | ResetFailed
    | Restart
    | ConvertLF
    | PatchSource
    | SecureFile
    | RewriteFile
)
StreamAction = (
    TrimStream | HandOver | CreateGroup | DeleteConsumer | MigrateStream | QuarantineEntries
)
Action = HostAction | StreamAction
