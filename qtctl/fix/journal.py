"""The fix journal: every applied change with its backup, so `qtctl fix --undo` can restore it."""

from __future__ import annotations

import json
import os
import re
import secrets
import stat
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qtctl.adapters import safe_files
from qtctl.adapters.safe_files import private_umask
from qtctl.errors import QtctlError, UsageError
from qtctl.fix.changes import Change, Undone
from qtctl.redaction import DEFAULT

RECORD_ID = re.compile(r"\d{8}T\d{6}Z-[0-9a-f]{4}")
FREE_TEXT = ("action", "error", "reason")  # display only: undo never reads them


@dataclass
class FixRecord:
    """One `qtctl fix --apply` run: what changed and how to put it back."""

    id: str
    started: float
    changes: list[dict[str, Any]] = field(default_factory=list)
    undoes: str = ""  # set on the record of a `fix --undo`: the id it undid

    def add(self, kind: Change | Undone, **data: Any) -> None:
        """Record one applied action with what undo needs; its free text (errors and reasons
        quote exceptions) goes through the redaction step."""
        text = {
            k: DEFAULT.shown(v) for k, v in data.items() if k in FREE_TEXT and isinstance(v, str)
        }
        self.changes.append({"kind": kind, "at": time.time(), **data, **text})


class FixJournal:
    """Records under `<state_dir>/fixes/<id>.json`, written atomically after every change.

    The folders are root's own and mode 0700 from the start, every record and backup 0600; a
    record or folder that is not (the fleet user could have planted it) is refused."""

    def __init__(self, state_dir: str) -> None:
        self.state = Path(state_dir)
        self.root = self.state / "fixes"

    def start(self) -> FixRecord:
        """A new record with a sortable id."""
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        return FixRecord(id=f"{stamp}-{secrets.token_hex(2)}", started=time.time())

    def folder(self, record: FixRecord) -> Path:
        """The record's own private folder (backups, stream archives), made on first use."""
        return self._private(self.root / record.id)

    def backup(self, record: FixRecord, data: bytes) -> str:
        """Keep original bytes next to the record (mode 600); returns the backup's path."""
        path = self.folder(record) / f"{len(record.changes):05d}.orig"
        safe_files.write_file(str(path), data, 0o600)
        return str(path)

    def read_backup(self, record: FixRecord, path: str) -> bytes:
        """A backup of this record, only from inside its own folder."""
        folder = self.root / record.id
        if Path(path).parent != folder or not Path(path).name.endswith(".orig"):
            raise UsageError(f"record {record.id} names a backup outside {folder}: {path}")
        _check_private(folder)
        return safe_files.read_file(path)[0]

    def save(self, record: FixRecord) -> Path:
        """Write the record atomically (a 0600 temp file created O_EXCL, then renamed)."""
        path = self._private(self.root) / f"{record.id}.json"
        doc: dict[str, Any] = {"id": record.id, "started": record.started}
        if record.undoes:
            doc["undoes"] = record.undoes
        doc["changes"] = record.changes
        safe_files.write_file(str(path), json.dumps(doc, indent=2).encode(), 0o600)
        return path

    def load(self, ref: str) -> FixRecord:
        """A record by id, or the newest for LAST; only ids of records in the state folder."""
        if ref.upper() != "LAST" and not RECORD_ID.fullmatch(ref):
            raise UsageError(f"{ref!r} is not a fix record id (such as 20261202T130000Z-1a2b)")
        ids = self.ids()
        if not ids:
            raise UsageError(f"no fix has been applied yet ({self.root} is empty)")
        if ref.upper() == "LAST":
            return self._last_fix(ids)
        if ref not in ids:
            raise UsageError(f"no fix {ref!r} in {self.root}; known: {', '.join(ids[-5:])}")
        doc = self._read(ref)
        return FixRecord(doc["id"], doc["started"], doc["changes"], doc.get("undoes", ""))

    def _last_fix(self, ids: list[str]) -> FixRecord:
        """The newest record of a fix (not of an undo: undoing an undo puts nothing back)."""
        for ref in reversed(ids):
            doc = self._read(ref)
            kinds = {c.get("kind") for c in doc["changes"]}
            if not doc.get("undoes") and not (kinds and kinds <= set(Undone)):
                return FixRecord(doc["id"], doc["started"], doc["changes"])
        raise UsageError(f"no fix to undo in {self.root}: every record there is an undo")

    def last_restarts(self) -> dict[str, float]:
        """Unit -> time qtctl fix last restarted it, from every record."""
        found: dict[str, float] = {}
        for ref in self.ids():
            try:
                doc = self._read(ref)
            except (OSError, ValueError, QtctlError):
                continue  # a damaged record must not stop fix; it is simply not counted
            for change in doc.get("changes", []):
                if change.get("kind") == Change.RESTART:
                    found[change["unit"]] = max(found.get(change["unit"], 0.0), change["at"])
        return found

    def ids(self) -> list[str]:
        """Ids of all records, oldest first (undo records included)."""
        if not self.root.is_dir():
            return []
        _check_private(self.root)
        return sorted(p.stem for p in self.root.glob("*.json") if RECORD_ID.fullmatch(p.stem))

    def _read(self, ref: str) -> dict[str, Any]:
        path = self.root / f"{ref}.json"
        data, snapshot = safe_files.read_file(str(path))
        if snapshot.uid != os.geteuid() or snapshot.mode & 0o022:
            raise UsageError(
                f"{path} was not written by qtctl (owner uid {snapshot.uid}, mode "
                f"{snapshot.mode:04o}): refused"
            )
        doc: dict[str, Any] = json.loads(data)
        return doc

    def _private(self, folder: Path) -> Path:
        for existing in (self.state, self.root, folder):  # refuse before creating anything
            if os.path.lexists(existing):
                _check_private(existing)
        with private_umask():
            folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        _check_private(self.state)
        _check_private(folder)
        return folder


def _check_private(folder: Path) -> None:
    """A real folder of ours that no one else can write (qtctl makes them 0700; an older,
    more readable one is still used, its files being 0600)."""
    info = os.lstat(folder)
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid() or info.st_mode & 0o022:
        link = ", a symlink" if stat.S_ISLNK(info.st_mode) else ""
        raise UsageError(
            f"{folder} must be a folder of uid {os.geteuid()} that no one else can write (it is "
            f"uid {info.st_uid}, mode {stat.S_IMODE(info.st_mode):04o}{link}): fix refuses to "
            "keep its journal there"
        )
