"""The fix journal: every applied change with its backup, so `qtctl fix --undo` can restore it."""

from __future__ import annotations

import json
import os
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qtctl.errors import UsageError
from qtctl.fix.changes import Change, Undone


@dataclass
class FixRecord:
    """One `qtctl fix --apply` run: what changed and how to put it back."""

    id: str
    started: float
    changes: list[dict[str, Any]] = field(default_factory=list)

    def add(self, kind: Change | Undone, **data: Any) -> None:
        """Record one applied action with what undo needs."""
        self.changes.append({"kind": kind, "at": time.time(), **data})


class FixJournal:
    """Records under `<state_dir>/fixes/<id>.json`, written atomically after every change."""

    def __init__(self, state_dir: str) -> None:
        self.root = Path(state_dir) / "fixes"

    def start(self) -> FixRecord:
        """A new record with a sortable id."""
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        return FixRecord(id=f"{stamp}-{secrets.token_hex(2)}", started=time.time())

    def backup(self, record: FixRecord, data: bytes) -> str:
        """Keep original bytes next to the record; returns the backup's path."""
        folder = self.root / record.id
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        path = folder / f"{len(record.changes):05d}.orig"
        path.write_bytes(data)
        return str(path)

    def save(self, record: FixRecord) -> Path:
        """Write the record atomically (tmp file + rename)."""
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        path = self.root / f"{record.id}.json"
        tmp = path.with_suffix(".tmp")
        doc = {"id": record.id, "started": record.started, "changes": record.changes}
        tmp.write_text(json.dumps(doc, indent=2))
        os.replace(tmp, path)
        return path

    def load(self, ref: str) -> FixRecord:
        """A record by id, or the newest for LAST."""
        ids = self.ids()
        if not ids:
            raise UsageError(f"no fix has been applied yet ({self.root} is empty)")
        chosen = ids[-1] if ref.upper() == "LAST" else ref
        path = self.root / f"{chosen}.json"
        if not path.is_file():
            raise UsageError(f"no fix {ref!r} in {self.root}; known: {', '.join(ids[-5:])}")
        doc = json.loads(path.read_text())
        return FixRecord(doc["id"], doc["started"], doc["changes"])

    def last_restarts(self) -> dict[str, float]:
        """Unit -> time qtctl fix last restarted it, from every record."""
        found: dict[str, float] = {}
        for ref in self.ids():
            try:
                doc = json.loads((self.root / f"{ref}.json").read_text())
            except (OSError, ValueError):
                continue  # a damaged record must not stop fix; it is simply not counted
            for change in doc.get("changes", []):
                if change.get("kind") == Change.RESTART:
                    found[change["unit"]] = max(found.get(change["unit"], 0.0), change["at"])
        return found

    def ids(self) -> list[str]:
        """Ids of all records, oldest first (undo records included)."""
        if not self.root.is_dir():
            return []
        return sorted(p.stem for p in self.root.glob("*.json") if p.is_file())
