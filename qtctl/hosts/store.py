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

from qtctl.hosts.record import SCHEMA, encode

MAX_HOSTS = 1_000
MAX_RECORD_BYTES = 1 << 20


@dataclass(frozen=True)
class StoredHost:
    """One host as read back: its record, or why it could not be read."""

    host: str
    indexed_at: float  # the index's score: when the host last published
    record: Mapping[str, Any] | None
    problem: str = ""


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
    """Every indexed host (at most MAX_HOSTS, newest first) with its record."""
    raw_index: Any = client.zrevrange(hosts_key(key), 0, MAX_HOSTS - 1, withscores=True)
    index = [(_text(member), float(score)) for member, score in raw_index]
    pipe = client.pipeline(transaction=False)
    for host, _score in index:
        pipe.hget(host_key(key, host), "record")
    raws = pipe.execute() if index else []
    return [_stored(host, score, raw) for (host, score), raw in zip(index, raws, strict=True)]


def _stored(host: str, score: float, raw: bytes | None) -> StoredHost:
    if raw is None:
        return StoredHost(host, score, None, "indexed, but its record is missing")
    if len(raw) > MAX_RECORD_BYTES:
        return StoredHost(host, score, None, f"record over {MAX_RECORD_BYTES} bytes: not read")
    try:
        record = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return StoredHost(host, score, None, "record is not valid JSON")
    if not isinstance(record, dict) or record.get("schema") != SCHEMA:
        return StoredHost(host, score, None, f"record is not a {SCHEMA} document")
    return StoredHost(host, score, record)


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value
