"""Move a misnamed stream's entries into the right one, keeping IDs and order, losing nothing.

Redis appends only IDs above a stream's last-generated ID. Entries of the source that sort after
the target's are appended in place (the target's groups and pending lists stay as they are).
When some sort before, the target is rebuilt under a temporary key as the ID-ordered merge of
both, its consumer groups re-created at the same positions, and swapped in with one RENAME; a
target group with pending entries makes that impossible without dropping them, so the
migration is refused before anything changes. The source is archived first and deleted last,
only when every one of its entries is verified in the target and it has not grown meanwhile.
"""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qtctl.adapters.redis_client import text
from qtctl.adapters.stream_archive import CHUNK, export_all, key_filename, restore
from qtctl.stream_ids import order

# Delete KEYS[1] only if it still has ARGV[1] entries and ends at ARGV[2].
DELETE_IF_UNCHANGED = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local last = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
local last_id = ''
if #last > 0 then last_id = last[1][1] end
if redis.call('XLEN', KEYS[1]) == tonumber(ARGV[1]) and last_id == ARGV[2] then
  return redis.call('DEL', KEYS[1])
end
return -1
"""


class MigrationRefused(Exception):
    """The migration cannot be done without losing something; nothing was changed."""


@dataclass(frozen=True)
class MigrationResult:
    """What a migration moved and where its evidence is kept."""

    source: str
    target: str
    moved: int
    already_there: int
    rebuilt: bool
    source_archive: str
    target_archive: str
    added_ids: str
    source_deleted: bool


def migrate(client: Any, source: str, target: str, workdir: Path) -> MigrationResult:
    """Merge every entry of `source` into `target`, verify, then delete `source`."""
    if client.type(source) != "stream":
        raise MigrationRefused(f"{source} is not a stream")
    if client.exists(target) and client.type(target) != "stream":
        raise MigrationRefused(f"{target} exists and is not a stream")
    workdir.mkdir(parents=True, exist_ok=True)
    stem = key_filename(source)
    source_archive = workdir / f"{stem}.jsonl.gz"
    count, _, source_last = export_all(client, source, source_archive)
    target_last = _last_generated(client, target)
    added, present, early = _classify(client, source, target, target_last)
    target_archive = ""
    if early:
        target_archive = str(workdir / f"{key_filename(target)}.before.jsonl.gz")
        export_all(client, target, Path(target_archive))
        _rebuild(client, source, target, present)
    else:
        _append(client, source, target, target_last)
    added_file = workdir / f"{stem}.added-ids.txt.gz"
    with gzip.open(added_file, "wt", encoding="ascii") as out:
        out.writelines(f"{entry_id}\n" for entry_id in added)
    missing = _missing_in_target(client, source, target)
    if missing:
        raise MigrationRefused(
            f"{missing} entries of {source} are not in {target} after the copy; "
            f"{source} was left in place (archive: {source_archive})"
        )
    deleted = client.eval(DELETE_IF_UNCHANGED, 1, source, count, source_last) == 1
    return MigrationResult(
        source,
        target,
        len(added),
        present,
        bool(early),
        str(source_archive),
        target_archive,
        str(added_file),
        deleted,
    )


def _classify(
    client: Any, source: str, target: str, target_last: tuple[int, int]
) -> tuple[list[str], int, int]:
    """(IDs to add, IDs already in the target, how many of those to add sort before its end)."""
    added: list[str] = []
    present = early = 0
    for chunk in _chunks(client, source):
        older = [entry_id for entry_id, _ in chunk if order(entry_id) <= target_last]
        found = set(_present(client, target, older))
        for entry_id, _ in chunk:
            if entry_id in found:
                present += 1
            else:
                added.append(entry_id)
                early += order(entry_id) <= target_last
    return added, present, early


def _append(client: Any, source: str, target: str, target_last: tuple[int, int]) -> None:
    for chunk in _chunks(client, source):
        pipe = client.pipeline(transaction=False)
        for entry_id, fields in chunk:
            if order(entry_id) > target_last:
                pipe.xadd(target, fields, id=entry_id)
        pipe.execute()


def _rebuild(client: Any, source: str, target: str, overlap: int) -> None:
    """Write the merge of both into a temporary key, then RENAME it over the target."""
    groups = client.xinfo_groups(target)
    busy = [g for g in groups if int(g["pending"])]
    if busy:
        names = ", ".join(f"{text(g['name'])} ({g['pending']} pending)" for g in busy)
        raise MigrationRefused(
            f"{target} must be rebuilt (entries of {source} sort before its newest) and its "
            f"group(s) {names} hold pending entries a rebuild would drop: acknowledge or hand "
            "them over first"
        )
    tmp = f"{target}:qtctl-migrate"
    client.delete(tmp)
    written, last = 0, (0, 0)
    for batch in _chunked(_merge(_entries(client, target), _entries(client, source))):
        pipe = client.pipeline(transaction=False)
        for entry_id, fields in batch:
            pipe.xadd(tmp, fields, id=entry_id)
        pipe.execute()
        written += len(batch)
        last = order(batch[-1][0])
    expected_len = int(client.xlen(target)) + int(client.xlen(source))
    expected_len -= overlap  # source entries already in the target are written once
    if written != expected_len or int(client.xlen(tmp)) != written:
        client.delete(tmp)
        raise MigrationRefused(f"merge wrote {written} entries, expected {expected_len}")
    previous = _last_generated(client, target)
    if previous > last:
        client.xsetid(tmp, f"{previous[0]}-{previous[1]}")
    for group in groups:
        delivered = text(group["last-delivered-id"])
        read = _count_upto(client, tmp, delivered)
        client.execute_command(
            "XGROUP", "CREATE", tmp, text(group["name"]), delivered, "ENTRIESREAD", read
        )
    client.rename(tmp, target)


def _merge(
    left: Iterator[tuple[str, Any]], right: Iterator[tuple[str, Any]]
) -> Iterator[tuple[str, Any]]:
    """Both ID-ordered entry streams as one, an ID present in both taken once (the left)."""
    a, b = next(left, None), next(right, None)
    while a or b:
        if b is None or (a is not None and order(a[0]) <= order(b[0])):
            assert a is not None
            if b is not None and a[0] == b[0]:
                b = next(right, None)
            yield a
            a = next(left, None)
        else:
            yield b
            b = next(right, None)


def _missing_in_target(client: Any, source: str, target: str) -> int:
    missing = 0
    for chunk in _chunks(client, source):
        ids = [entry_id for entry_id, _ in chunk]
        missing += len(ids) - len(_present(client, target, ids))
    return missing


def _present(client: Any, key: str, ids: list[str]) -> list[str]:
    """Which of `ids` exist in `key` (one pipelined XRANGE id id per ID)."""
    if not ids or not client.exists(key):
        return []
    pipe = client.pipeline(transaction=False)
    for entry_id in ids:
        pipe.xrange(key, min=entry_id, max=entry_id, count=1)
    return [entry_id for entry_id, hit in zip(ids, pipe.execute(), strict=True) if hit]


def _count_upto(client: Any, key: str, entry_id: str) -> int:
    count, start = 0, "-"
    while True:
        chunk = client.xrange(key, min=start, max=entry_id, count=CHUNK)
        count += len(chunk)
        if len(chunk) < CHUNK:
            return count
        start = f"({chunk[-1][0]}"


def _entries(client: Any, key: str) -> Iterator[tuple[str, Any]]:
    for chunk in _chunks(client, key):
        yield from chunk


def _chunks(client: Any, key: str) -> Iterator[list[tuple[str, Any]]]:
    start = "-"
    while True:
        chunk = client.xrange(key, min=start, max="+", count=CHUNK)
        if chunk:
            yield chunk
        if len(chunk) < CHUNK:
            return
        start = f"({chunk[-1][0]}"


def _chunked(entries: Iterator[tuple[str, Any]]) -> Iterator[list[tuple[str, Any]]]:
    batch: list[tuple[str, Any]] = []
    for entry in entries:
        batch.append(entry)
        if len(batch) == CHUNK:
            yield batch
            batch = []
    if batch:
        yield batch


def _last_generated(client: Any, key: str) -> tuple[int, int]:
    if not client.exists(key):
        return (0, 0)
    return order(text(client.xinfo_stream(key)["last-generated-id"]))


def undo_migration(client: Any, result: dict[str, Any]) -> tuple[int, int]:
    """XDEL from the target what the migration added; recreate the source from its archive.

    Returns (entries removed from the target, entries restored into the source).
    """
    with gzip.open(result["added_ids"], "rt", encoding="ascii") as handle:
        ids = [line.strip() for line in handle if line.strip()]
    removed = 0
    for start in range(0, len(ids), CHUNK):
        removed += int(client.xdel(result["target"], *ids[start : start + CHUNK]) or 0)
    restored = 0
    if not client.exists(result["source"]):
        restored = restore(client, Path(result["source_archive"]), result["source"])
    return removed, restored
