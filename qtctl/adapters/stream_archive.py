"""Trim a stream without losing anything: archive the entries first, then remove exactly those.

Archives are gzip-compressed JSONL, one `{"id": ..., "fields": {...}}` per line, in ID order,
written and fsynced before anything is trimmed.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qtctl.stream_ids import order as order  # re-exported: its home before qtctl.stream_ids

CHUNK = 10_000


@dataclass(frozen=True)
class TrimResult:
    """What a trim archived and removed."""

    archive: str
    archived: int
    removed: int
    first_id: str
    last_id: str


def trim_with_archive(
    client: Any, stream: str, keep: int, archive: Path, max_age_ms: int = 0, now_ms: int = 0
) -> TrimResult | None:
    """Archive the entries beyond the newest `keep` (and, with `max_age_ms`, those older than
    that), then XTRIM MINID at the boundary, so exactly the archived entries go."""
    boundary = _count_boundary(client, stream, keep)
    if max_age_ms:
        by_age = f"{max(0, now_ms - max_age_ms)}-0"
        boundary = max(boundary or "0-0", by_age, key=order)
    if not boundary or not client.xrange(stream, min="-", max=f"({boundary}", count=1):
        return None
    count, first, last = export_all(client, stream, archive, before=boundary)
    removed = int(client.xtrim(stream, minid=boundary, approximate=False))
    return TrimResult(str(archive), count, removed, first, last)


def _count_boundary(client: Any, stream: str, keep: int) -> str:
    """The ID of the oldest entry to keep so that `keep` remain; empty if nothing is over."""
    excess = int(client.xlen(stream)) - keep
    if excess <= 0:
        return ""
    if excess < keep:  # read whichever end is shorter
        return str(client.xrange(stream, min="-", max="+", count=excess + 1)[-1][0])
    return str(client.xrevrange(stream, max="+", min="-", count=keep)[-1][0])


def export_all(
    client: Any, stream: str, archive: Path, before: str | None = None
) -> tuple[int, str, str]:
    """Write every entry (or those before ID `before`) to a gzip JSONL archive, fsynced.

    Returns (entries written, first ID, last ID).
    """
    count, first, last, start = 0, "", "", "-"
    end = f"({before}" if before else "+"
    archive.parent.mkdir(parents=True, exist_ok=True)
    tmp = archive.with_name(archive.name + ".partial")
    with open(tmp, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb") as out:
        while True:
            entries = client.xrange(stream, min=start, max=end, count=CHUNK)
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
    """XADD every archived entry into `target` with its original ID, in order, in batches.

    Redis only appends IDs greater than a stream's last one, so the target must be empty or
    end before the archive begins.
    """
    entries = read_archive(archive)
    first = next(entries, None)
    if first is None:
        return 0
    last = client.xrevrange(target, count=1) if client.exists(target) else []
    if last and order(last[0][0]) >= order(first["id"]):
        raise ValueError(
            f"{target} already holds entries at or after {first['id']}: "
            "restore into an empty key (--into)"
        )
    count, batch = 0, [first]
    for entry in entries:
        batch.append(entry)
        if len(batch) == CHUNK:
            count += _add_batch(client, target, batch)
            batch = []
    return count + _add_batch(client, target, batch)


def _add_batch(client: Any, target: str, batch: list[dict[str, Any]]) -> int:
    pipe = client.pipeline(transaction=False)
    for entry in batch:
        pipe.xadd(target, entry["fields"], id=entry["id"])
    pipe.execute()
    return len(batch)


def read_archive(archive: Path) -> Iterator[dict[str, Any]]:
    """The archived entries, in order; a file that is not an archive of qtctl's is a ValueError
    that quotes none of its bytes."""
    from qtctl.adapters import safe_files

    try:
        with (
            safe_files.open_plain(str(archive.absolute())) as fd,
            os.fdopen(os.dup(fd), "rb") as raw,
            gzip.GzipFile(fileobj=raw) as packed,
        ):
            for line in packed:
                yield json.loads(line)
    except (gzip.BadGzipFile, EOFError, UnicodeDecodeError, json.JSONDecodeError):
        raise ValueError(f"{archive} is not an archive qtctl wrote (gzip JSON lines)") from None
    except safe_files.UnsafePath as exc:
        raise ValueError(str(exc)) from None


def key_filename(key: str) -> str:
    """A Redis key as a safe file name (archives, migration evidence): a digest of the whole key
    first (`c/d`, `c:d` and `c_d` must not share an archive), then a readable part."""
    digest = hashlib.sha256(key.encode("utf-8", "surrogateescape")).hexdigest()[:12]
    readable = re.sub(r"[^A-Za-z0-9._-]", "_", key).lstrip(".")[:120]
    return f"{digest}-{readable}"


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
        delete_consumer_if_empty(client, stream, group, dead)
    return claimed, left


# XGROUP DELCONSUMER drops the consumer's pending entries with it: check and delete atomically.
DELETE_IF_EMPTY = """
local p = redis.call('XPENDING', KEYS[1], ARGV[1], '-', '+', 1, ARGV[2])
if #p > 0 then return -1 end
return redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], ARGV[2])
"""


def delete_consumer_if_empty(client: Any, stream: str, group: str, consumer: str) -> bool:
    """Delete `consumer` only if it holds no pending entry at this instant."""
    return int(client.eval(DELETE_IF_EMPTY, 1, stream, group, consumer)) >= 0
