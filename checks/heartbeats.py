"""QT704: heartbeat keys the fleet's services write, older than allowed or without their TTL."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from qtctl.adapters.redis_client import text
from qtctl.engine.check import Check
from qtctl.engine.context import CheckContext
from qtctl.engine.findings import CodeDoc, Finding, Severity
from qtctl.engine.wording import duration
from qtctl.escaping import undecodable
from qtctl.stream_ids import id_ms

TIME_FIELDS = (
    "ts",
    "timestamp",
    "last_heartbeat",
    "heartbeat",
    "updated_at",
    "last_update",
    "time",
)
GLOB = "*?["
EARLIEST = 946684800.0  # 2000-01-01: smaller numbers are counters or flags, not times
STALE_HEARTBEAT = CodeDoc(
    code="QT704",
    title="stale heartbeat",
    severity="warning/error",
    meaning="A heartbeat key from services.heartbeats (`KEY=MAX_AGE_SEC`, KEY may be a glob "
    "matched with SCAN) is older than MAX_AGE_SEC (warning) or services.heartbeat_error_factor "
    "times that (error), or is missing (error). The age is read from the value: a Unix time in "
    "s or ms, an ISO 8601 time, JSON or a hash with a ts/timestamp/updated_at field, or a "
    "stream's newest entry ID. Keys in services.heartbeat_ttl_keys must carry a TTL (warning "
    "without one). A matching key whose name is not valid UTF-8 is reported (warning, cause "
    "undecodable-name) and not read.",
    why="A service that hangs keeps its unit `active`; its heartbeat is the only sign. A "
    "heartbeat without a TTL outlives its writer and looks alive forever.",
    fix="Look at the writer's unit (`qtctl doctor --select QT1,QT701`) and its journal; write "
    "heartbeats with SET key value EX <2-3x the interval>.",
)


@dataclass(frozen=True)
class Beat:
    """One heartbeat rule."""

    pattern: str
    max_age: float

    @property
    def is_glob(self) -> bool:
        """Whether the key is a SCAN pattern."""
        return any(c in self.pattern for c in GLOB)


def parse_rules(specs: tuple[str, ...]) -> list[Beat]:
    """`KEY=MAX_AGE_SEC` strings, validated when the config loads (the last `=` splits)."""
    return [Beat(key.strip(), float(age)) for key, _, age in (s.rpartition("=") for s in specs)]


def run(ctx: CheckContext) -> Iterator[Finding]:
    """Every configured heartbeat's age, then the TTL rule; one read for all keys."""
    settings = ctx.config.services
    rules = parse_rules(settings.heartbeats)
    if not rules and not settings.heartbeat_ttl_keys:
        return
    adapter = ctx.redis()
    count = ctx.config.streams.scan_count
    with adapter.guard("the heartbeat check"):
        client = adapter.client
        seconds, micros = client.time()
        now = float(seconds) + float(micros) / 1e6
        keys = {rule: _keys(client, rule.pattern, count) for rule in rules}
        ttl_keys = [k for p in settings.heartbeat_ttl_keys for k in _keys(client, p, count)]
        every = {key for found in keys.values() for key in found} | set(ttl_keys)
        unique = sorted(key for key in every if not undecodable(key))
        values = dict(zip(unique, _read(client, unique), strict=True))
        ttls = _ttls(client, [key for key in ttl_keys if not undecodable(key)])
    yield from (_undecodable(key) for key in sorted(filter(undecodable, every)))
    no_ttl = [key for key, ttl in ttls if ttl == -1]
    for rule, found in keys.items():
        present = [key for key in found if key in values and values[key][0] != "none"]
        if not present and not any(map(undecodable, found)):
            yield _missing(rule)
        for key in present:
            kind, value, ttl = values[key]
            finding = _judge(rule, key, kind, value, ttl, now, settings.heartbeat_error_factor)
            if finding:
                yield finding
    for key in dict.fromkeys(no_ttl):
        yield Finding(
            STALE_HEARTBEAT.code,
            Severity.WARNING,
            key,
            "heartbeat key has no TTL: after its writer dies it still looks alive",
            cause="no-ttl",
            fix_hint="write it with SET key value EX <seconds> (or EXPIRE after HSET)",
        )


def _keys(client: Any, pattern: str, count: int) -> list[str]:
    """A literal key as it is (its TYPE says whether it exists); a glob through SCAN."""
    if not any(c in pattern for c in GLOB):
        return [pattern]
    return sorted(text(k) for k in client.scan_iter(match=pattern, count=count))


def _ttls(client: Any, keys: list[str]) -> list[tuple[str, int]]:
    pipe = client.pipeline(transaction=False)
    for key in keys:
        pipe.ttl(key)
    return list(zip(keys, (int(t) for t in pipe.execute()), strict=True))


def _read(client: Any, keys: list[str]) -> list[tuple[str, Any, int]]:
    """(type, value, ttl) per key in two round trips."""
    pipe = client.pipeline(transaction=False)
    for key in keys:
        pipe.type(key)
        pipe.ttl(key)
    meta = pipe.execute()
    kinds = [text(k) for k in meta[0::2]]
    pipe = client.pipeline(transaction=False)
    for key, kind in zip(keys, kinds, strict=True):
        if kind == "string":
            pipe.get(key)
        elif kind == "hash":
            pipe.hmget(key, list(TIME_FIELDS))
        elif kind == "stream":
            pipe.xrevrange(key, count=1)
        else:
            pipe.echo("")
    values = pipe.execute(raise_on_error=False)
    return list(zip(kinds, values, [int(t) for t in meta[1::2]], strict=True))


def _judge(
    rule: Beat, key: str, kind: str, value: Any, ttl: int, now: float, factor: float
) -> Finding | None:
    when = _timestamp(kind, value)
    if when is None:
        if ttl > 0:
            return None  # a presence-only heartbeat kept alive by its TTL
        return Finding(
            STALE_HEARTBEAT.code,
            Severity.WARNING,
            key,
            f"heartbeat holds no time qtctl can read ({kind}) and has no TTL: its age is unknown",
            cause="no-timestamp",
            fix_hint=STALE_HEARTBEAT.fix,
        )
    age = now - when
    if age <= rule.max_age:
        return None
    severity = Severity.ERROR if age > rule.max_age * factor else Severity.WARNING
    return Finding(
        STALE_HEARTBEAT.code,
        severity,
        key,
        f"heartbeat is {duration(age)} old (allowed {rule.max_age:g} s)",
        cause="stale",
        detail=(f"rule: {rule.pattern}={rule.max_age:g}", f"last beat at {_utc(when)}"),
        fix_hint=STALE_HEARTBEAT.fix,
    )


def _undecodable(key: str) -> Finding:
    return Finding(
        STALE_HEARTBEAT.code,
        Severity.WARNING,
        key,
        "heartbeat key name is not valid UTF-8: its age is not checked",
        cause="undecodable-name",
        fix_hint="fix the writer's key name (the bytes are shown as \\xNN)",
    )


def _missing(rule: Beat) -> Finding:
    what = "no key matches" if rule.is_glob else "the key does not exist"
    return Finding(
        STALE_HEARTBEAT.code,
        Severity.ERROR,
        rule.pattern,
        f"no heartbeat: {what} (expires or was never written)",
        cause="missing",
        fix_hint=STALE_HEARTBEAT.fix,
    )


def _timestamp(kind: str, value: Any) -> float | None:
    if kind == "stream":
        return id_ms(text(value[0][0])) / 1000 if isinstance(value, list) and value else None
    if kind == "hash" and isinstance(value, list):
        return next((t for t in (parse_time(v) for v in value if v) if t is not None), None)
    if kind == "string" and value is not None:
        raw = text(value).strip()
        try:
            doc = json.loads(raw)
        except ValueError:
            return parse_time(raw)
        if isinstance(doc, dict):
            found = (parse_time(doc[f]) for f in TIME_FIELDS if f in doc)
            return next((t for t in found if t is not None), None)
        return parse_time(doc)
    return None


def parse_time(value: Any) -> float | None:
    """Unix seconds, milliseconds or microseconds, or ISO 8601; None when it is none of them."""
    if isinstance(value, bool):
        return None
    try:
        number = float(text(value))
    except ValueError:
        try:
            stamp = datetime.fromisoformat(text(value).strip().replace("Z", "+00:00"))
        except ValueError:
            return None
        return (stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)).timestamp()
    if not math.isfinite(number) or number <= 0:
        return None
    while number > 1e11:  # ms or us since the epoch
        number /= 1000
    return number if number >= EARLIEST else None  # a counter or a flag, not a time


def _utc(when: float) -> str:
    return datetime.fromtimestamp(when, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


CHECK = Check(name="heartbeats", codes=(STALE_HEARTBEAT,), run=run)
