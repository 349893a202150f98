"""The few things fix ever does to a host, each described exactly as a shell command would read."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RemoveLink:
    """Delete a dangling unit symlink (its target is recorded for undo)."""

    path: str
    target: str

    def describe(self) -> str:
        """The command an operator would type."""
        return f"rm {self.path}    # dangling -> {self.target}"


@dataclass(frozen=True)
class WriteDropIn:
    """Write a drop-in file; the previous content (or its absence) is backed up."""

    path: str
    content: str

    def describe(self) -> str:
        """The file and its content."""
        body = self.content.rstrip("\n").replace("\n", "\n        ")
        return f"write {self.path}:\n        {body}"


@dataclass(frozen=True)
class DaemonReload:
    """`systemctl daemon-reload`."""

    def describe(self) -> str:
        """The command."""
        return "systemctl daemon-reload"


@dataclass(frozen=True)
class ResetFailed:
    """`systemctl reset-failed UNIT`."""

    unit: str

    def describe(self) -> str:
        """The command."""
        return f"systemctl reset-failed {self.unit}"


@dataclass(frozen=True)
class Restart:
    """`systemctl restart UNIT`: disruptive, needs --unsafe and passes the safety rules."""

    unit: str

    def describe(self) -> str:
        """The command."""
        return f"systemctl restart {self.unit}"


@dataclass(frozen=True)
class ConvertLF:
    """Rewrite a text file with LF endings (and no BOM before its shebang), backed up."""

    path: str

    def describe(self) -> str:
        """The equivalent command."""
        return f"convert {self.path} to LF (mode and owner kept, original backed up)"


@dataclass(frozen=True)
class PatchSource:
    """Replace a service source file with a proven patch (the diff is shown in the plan)."""

    path: str
    new_text: str

    def describe(self) -> str:
        """What happens."""
        return f"patch {self.path} (diff below; original backed up)"


@dataclass(frozen=True)
class TrimStream:
    """Archive a stream's oldest entries beyond `keep`, then remove exactly those."""

    stream: str
    keep: int
    max_age_sec: float = 0.0

    def describe(self) -> str:
        """The equivalent commands."""
        age = f" and older than {self.max_age_sec:g} s" if self.max_age_sec else ""
        return (
            f"archive the entries of {self.stream} beyond the newest {self.keep}{age} "
            f"(gzip JSONL), then XTRIM {self.stream} MINID <first kept id>"
        )


@dataclass(frozen=True)
class HandOver:
    """Move a dead consumer's pending entries to a live one, then delete the dead consumer."""

    stream: str
    group: str
    dead: str
    live: str

    def describe(self) -> str:
        """The equivalent commands."""
        return (
            f"XCLAIM the pending entries of {self.dead} in {self.stream} group {self.group} "
            f"for {self.live}; XGROUP DELCONSUMER {self.stream} {self.group} {self.dead}"
        )


@dataclass(frozen=True)
class CreateGroup:
    """Create a missing consumer group at an explicit ID (never MKSTREAM)."""

    stream: str
    group: str
    start_id: str

    def describe(self) -> str:
        """The command."""
        return f"XGROUP CREATE {self.stream} {self.group} {self.start_id}"


@dataclass(frozen=True)
class DeleteConsumer:
    """Delete an idle consumer, atomically checked to hold no pending entries."""

    stream: str
    group: str
    consumer: str

    def describe(self) -> str:
        """The command."""
        return (
            f"XGROUP DELCONSUMER {self.stream} {self.group} {self.consumer}    "
            "# only if it still holds nothing"
        )


@dataclass(frozen=True)
class MigrateStream:
    """Move a misnamed stream's entries into the expected one (IDs kept), then delete it."""

    source: str
    target: str

    def describe(self) -> str:
        """What happens, in order."""
        return (
            f"archive {self.source}; copy its entries into {self.target} with their IDs, in "
            f"order, skipping IDs already there; verify every one is there; DEL {self.source} "
            "if it did not grow meanwhile"
        )


@dataclass(frozen=True)
class SecureFile:
    """chown a file to its one reader and make it mode 600 (previous owner and mode recorded)."""

    path: str
    user: str
    mode: int = 0o600

    def describe(self) -> str:
        """The equivalent commands."""
        return f"chown {self.user}: {self.path} && chmod {self.mode:o} {self.path}"


@dataclass(frozen=True)
class RewriteFile:
    """Replace a config file's text with a proven rewrite (diff in the plan; original kept)."""

    path: str
    new_text: str
    why: str

    def describe(self) -> str:
        """What happens."""
        return f"rewrite {self.path} ({self.why}; diff below; original backed up)"


@dataclass(frozen=True)
class QuarantineEntries:
    """Archive chosen stream entries, copy them to `<stream>:quarantine`, then XDEL them."""

    stream: str
    reasons: tuple[tuple[str, str], ...]  # (entry id, why)

    def describe(self) -> str:
        """The equivalent commands."""
        return (
            f"archive {len(self.reasons)} entries of {self.stream} (gzip JSONL), XADD each to "
            f"{self.stream}:quarantine with its reason, XDEL it from {self.stream} (not if a "
            "group still has it pending)"
        )


Action = (
    RemoveLink
    | WriteDropIn
    | DaemonReload
    | ResetFailed
    | Restart
    | ConvertLF
    | PatchSource
    | TrimStream
    | HandOver
    | CreateGroup
    | DeleteConsumer
    | MigrateStream
    | SecureFile
    | RewriteFile
    | QuarantineEntries
)
