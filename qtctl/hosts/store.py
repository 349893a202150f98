"""Host records in the shared Redis: one hash per host plus an index of hosts by report time.

Keys (under `report.redis_key`, e.g. `quantum:qtctl:health`):
- `<key>:hosts`: a sorted set, member the host name, score its last report's Unix time;
- `<key>:host:<host>`: a hash with `record` (the JSON host record), `generated_at`, `status`.
Everything read back is untrusted (any client of that Redis can write there): names are capped
and escaped where shown, a record that does not parse is reported as such, never trusted."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import redis

from qtctl.escaping import shown, undecodable
from qtctl.hosts.checked import record_problem
from qtctl.hosts.record import SCHEMA, encode

MAX_HOSTS = 1_000  # read per run: the newest half and the oldest half (where stale hosts are)
MAX_RECORD_BYTES = 1 << 20
MAX_TOTAL_BYTES = 64 << 20  # of all records together: 1,000 hosts of 1 MiB would be 1 GiB
BATCH = 50
UNREADABLE = "host-record-unreadable"
TRUNCATED = "hosts-truncated"


@dataclass(frozen=True)
class StoredHost:
    """One host as read back: its record, or why it could not be read."""

    host: str
    indexed_at: float  # the index's score: when the host last published
    record: Mapping[str, Any] | None
    problem: str = ""
    root: str = UNREADABLE  # the incident a problem is: unreadable, or hosts left unread


def hosts_key(key: str) -> str:
    """The index of hosts."""
    return f"{key}:hosts"


def host_key(key: str, host: str) -> str:
    """One host's hash."""
    return f"{key}:host:{host}"


def publish_host(client: redis.Redis, key: str, record: Mapping[str, Any]) -> None:
    """Store this host's record and index it, in one transaction."""
    host = str(record["host"])
    pipe = client.pipeline(transaction=True)
    pipe.hset(
        host_key(key, host),
        mapping={
            "record": encode(record),
            "generated_at": record["generated_at"],
            "status": record["status"],
        },
    )
    pipe.zadd(hosts_key(key), {host: float(record["generated_at"])})
    pipe.execute()


def read_hosts(client: redis.Redis, key: str) -> list[StoredHost]:
    """Every indexed host with its record, newest first. Over MAX_HOSTS, the newest and the
    oldest half are read (a stale host is the oldest score: never the one dropped) and one
    `hosts-truncated` entry says how many were not."""
    total = int(client.zcard(hosts_key(key)))
    half = MAX_HOSTS // 2
    spans = [(0, -1)] if total <= MAX_HOSTS else [(0, half - 1), (total - half, total - 1)]
    index: list[tuple[bytes, float]] = []
    for start, stop in spans:
        raw: Any = client.zrevrange(hosts_key(key), start, stop, withscores=True)
        index += [(_member(member), float(score)) for member, score in raw]
    stored = _read_records(client, key, index)
    if total > MAX_HOSTS:
        left = total - MAX_HOSTS
        why = f"{left} of {total} indexed hosts not read (at most {MAX_HOSTS}: newest and oldest)"
        stored.append(StoredHost(f"({left} more hosts)", 0.0, None, why, TRUNCATED))
    return stored


def _read_records(
    client: redis.Redis, key: str, index: list[tuple[bytes, float]]
) -> list[StoredHost]:
    """The records, BATCH at a time, each parsed and checked before the next batch is read:
    at most BATCH raw records in memory, MAX_TOTAL_BYTES read in all (the rest: not read)."""
    stored: list[StoredHost] = []
    budget = MAX_TOTAL_BYTES
    for start in range(0, len(index), BATCH):
        batch = index[start : start + BATCH]
        if budget <= 0:
            why = f"not read: the records read so far hold {MAX_TOTAL_BYTES} bytes in all"
            stored += [StoredHost(_name(m), score, None, why) for m, score in batch]
            continue
        pipe = client.pipeline(transaction=False)
        for member, _score in batch:
            pipe.hget(key.encode() + b":host:" + member, "record")
        for (member, score), raw in zip(batch, pipe.execute(raise_on_error=False), strict=True):
            budget -= len(raw) if isinstance(raw, bytes | str) else 0
            stored.append(_stored(_name(member), score, raw))
    return stored


def _stored(host: str, score: float, raw: object) -> StoredHost:
    if isinstance(raw, Exception):  # WRONGTYPE: a string or list where the hash should be
        return StoredHost(host, score, None, f"record unreadable: {str(raw)[:200]}")
    if raw is None:
        return StoredHost(host, score, None, "indexed, but its record is missing")
    if not isinstance(raw, bytes | str) or len(raw) > MAX_RECORD_BYTES:
        return StoredHost(host, score, None, f"record over {MAX_RECORD_BYTES} bytes: not read")
    try:
        record = json.loads(raw, parse_constant=_no_constant)
    except (ValueError, UnicodeDecodeError):
        return StoredHost(host, score, None, "record is not valid JSON")
    except RecursionError:
        return StoredHost(host, score, None, "record is not valid JSON (nested too deep)")
    if not isinstance(record, dict) or record.get("schema") != SCHEMA:
        return StoredHost(host, score, None, f"record is not a {SCHEMA} document")
    problem = record_problem(host, record)
    return StoredHost(host, score, None if problem else record, problem)


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def _member(value: bytes | str) -> bytes:
    """The member as the bytes it is (a str client read it with surrogateescape)."""
    return value if isinstance(value, bytes) else value.encode("utf-8", "surrogateescape")


def _name(member: bytes) -> str:
    """A host name as shown: as it is when UTF-8 (escaped where printed), else escaped here,
    so no output (JSON included) carries a byte that was not UTF-8."""
    name = member.decode("utf-8", "surrogateescape")
    return shown(name) if undecodable(name) else name
