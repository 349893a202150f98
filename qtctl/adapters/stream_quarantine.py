"""Move chosen entries out of a stream into `<stream>:quarantine`: archived first, atomic per
entry, never an entry a consumer group still has pending."""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path
from typing import Any

from qtctl.adapters.redis_client import text
from qtctl.adapters.stream_archive import order

# KEYS: stream, quarantine. ARGV: id, reason, id, reason, ...
# Returns {moved, held}: an entry pending in any group is held, one already gone is skipped.
QUARANTINE = """
local groups = redis.call('XINFO', 'GROUPS', KEYS[1])
local moved, held = 0, 0
for i = 1, #ARGV, 2 do
    local id, reason = ARGV[i], ARGV[i + 1]
    local entry = redis.call('XRANGE', KEYS[1], id, id)
    if #entry == 1 then
        local pending = false
        for _, g in ipairs(groups) do
            local name
            for j = 1, #g, 2 do if g[j] == 'name' then name = g[j + 1] end end
            if #redis.call('XPENDING', KEYS[1], name, id, id, 1) > 0 then pending = true end
        end
        if pending then
            held = held + 1
        else
            local fields = entry[1][2]
            table.insert(fields, 'quarantined_from_id')
            table.insert(fields, id)
            table.insert(fields, 'quarantine_reason')
            table.insert(fields, reason)
            redis.call('XADD', KEYS[2], '*', unpack(fields))
            redis.call('XDEL', KEYS[1], id)
            moved = moved + 1
        end
    end
end
return {moved, held}
"""


def archive_entries(client: Any, stream: str, ids: list[str], archive: Path) -> int:
    """Write the entries with these IDs to a gzip JSONL archive (the trim archive's format)."""
    archive.parent.mkdir(parents=True, exist_ok=True)
    tmp = archive.with_name(archive.name + ".partial")
    pipe = client.pipeline(transaction=False)  # one round trip for every entry
    for entry_id in sorted(ids, key=order):
        pipe.xrange(stream, min=entry_id, max=entry_id)
    count = 0
    with open(tmp, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb") as out:
        for entries in pipe.execute():
            for found_id, fields in entries:
                row = {
                    "id": text(found_id),
                    "fields": {text(k): text(v) for k, v in fields.items()},
                }
                out.write(json.dumps(row).encode() + b"\n")
                count += 1
        out.close()
        raw.flush()
        os.fsync(raw.fileno())
    os.replace(tmp, archive)
    return count


def quarantine(client: Any, stream: str, reasons: dict[str, str]) -> tuple[int, int]:
    """(moved, held) after moving the entries to `<stream>:quarantine`, with their reasons."""
    ordered = sorted(reasons.items(), key=lambda item: order(item[0]))  # oldest first
    argv = [part for entry_id, reason in ordered for part in (entry_id, reason)]
    moved, held = client.eval(QUARANTINE, 2, stream, f"{stream}:quarantine", *argv)
    return int(moved), int(held)


def pending_ids(client: Any, stream: str) -> set[str]:
    """Every entry ID some consumer group of the stream has delivered and not acknowledged."""
    ids: set[str] = set()
    try:
        groups = client.xinfo_groups(stream)
    except Exception:  # no groups, or the key vanished: nothing is pending
        return ids
    for group in groups:
        name = text(group.get("name"))
        if int(group.get("pending", 0)):
            rows = client.xpending_range(stream, name, min="-", max="+", count=100_000)
            ids.update(text(r["message_id"]) for r in rows)
    return ids
