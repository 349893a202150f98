"""Trim a stream without losing anything: archive the entries first, then remove exactly those.

Archives are gzip-compressed JSONL, one `{"id": ..., "fields": {...}}` per line, in ID order,
written and fsynced before anything is trimmed.
"""

from __future__ import annotations

import gzip
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CHUNK = 10_000


@dataclass(frozen=True)
class TrimResult:
    """What a trim archived and removed."""

    archive: str
    archived: int
    removed: int
    first_id: str
    last_id: str


def trim_with_archive(client: Any, stream: str, keep: int, archive: Path) -> TrimResult | None:
    """Archive the oldest entries beyond `keep`, then XTRIM MINID at the first kept entry."""
    length = int(client.xlen(stream))
    excess = length - keep
    if excess <= 0:
        return None
    boundary = client.xrange(stream, min="-", max="+", count=excess + 1)[-1][0]
    archive.parent.mkdir(parents=True, exist_ok=True)
    count, first, last = _export(client, stream, boundary, archive)
    removed = int(client.xtrim(stream, minid=boundary, approximate=False))
    return TrimResult(str(archive), count, removed, first, last)


def _export(client: Any, stream: str, boundary: str, archive: Path) -> tuple[int, str, str]:
    count, first, last, start = 0, "", "", "-"
    tmp = archive.with_name(archive.name + ".partial")
    with open(tmp, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb") as out:
        while True:
            entries = client.xrange(stream, min=start, max=f"({boundary}", count=CHUNK)
            for entry_id, fields in entries:
                out.write(json.dumps({"id": entry_id, "fields": fields}).encode() + b"\n")
                first, last, count = first or entry_id, entry_id, count + 1
            if len(entries) < CHUNK:
                break
            start = f"({entries[-1][0]}"
        out.close()
        raw.flush()
        os.fsync(raw.fileno())
    os.replace(tmp, archive)
    return count, first, last


def restore(client: Any, archive: Path, target: str) -> int:
    """XADD every archived entry into `target` with its original ID, in order.

    Redis only appends IDs greater than a stream's last one, so the target must be empty or
    end before the archive begins.
    """
    entries = list(read_archive(archive))
    if not entries:
        return 0
    last = client.xrevrange(target, count=1) if client.exists(target) else []
    if last and _order(last[0][0]) >= _order(entries[0]["id"]):
        raise ValueError(
            f"{target} already holds entries at or after {entries[0]['id']}: "
            "restore into an empty key (--into)"
        )
    pipe = client.pipeline(transaction=False)
    for entry in entries:
        pipe.xadd(target, entry["fields"], id=entry["id"])
    pipe.execute()
    return len(entries)


def read_archive(archive: Path) -> Any:
    """The archived entries, in order."""
    with gzip.open(archive, "rt", encoding="utf-8") as handle:
        for line in handle:
            yield json.loads(line)


def _order(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


def hand_over(client: Any, stream: str, group: str, dead: str, live: str) -> tuple[int, int]:
    """XCLAIM every pending entry of `dead` for `live`, then delete `dead` if it holds nothing.

    Returns (entries claimed, entries still pending on the dead consumer).
    """
    claimed = 0
    while True:
        pending = client.xpending_range(
            stream, group, min="-", max="+", count=CHUNK, consumername=dead
        )
        if not pending:
            break
        ids = [p["message_id"] for p in pending]
        claimed += len(
            client.xclaim(stream, group, live, min_idle_time=0, message_ids=ids, justid=True)
        )
        if len(pending) < CHUNK:
            break
    left = len(client.xpending_range(stream, group, min="-", max="+", count=1, consumername=dead))
    if not left:
        client.xgroup_delconsumer(stream, group, dead)
    return claimed, left
