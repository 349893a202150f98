"""Connect to Redis, classify connection failures, mask the URL (raw pipelines: `resp`)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from qtctl.config import RedisSettings
from qtctl.errors import AdapterUnavailable
from qtctl.escaping import undecodable
from qtctl.redaction import mask_url

NOT_UTF8 = "name is not valid UTF-8"


class RedisAdapter:
    """A connected Redis client for checks; connection failures become AdapterUnavailable."""

    def __init__(self, client: Any, url: str) -> None:
        self.client = client
        self.url = url

    @classmethod
    def connect(
        cls, settings: RedisSettings, decode: bool = True, block_sec: float = 0.0
    ) -> RedisAdapter:
        """Connect and PING, or raise AdapterUnavailable with a one-line, masked reason.

        `decode=False` keeps replies as bytes (daemons that move other people's data);
        `block_sec` extends the read timeout for blocking commands such as XREAD BLOCK. Decoded
        replies never fail on bytes that are not UTF-8: they arrive surrogate-escaped
        (`qtctl.escaping.undecodable` tells), and such a name is never sent back."""
        import redis

        masked = mask_url(settings.url)
        try:
            client = redis.Redis.from_url(
                settings.url,
                socket_timeout=settings.socket_timeout + block_sec,
                socket_connect_timeout=settings.socket_timeout,
                decode_responses=decode,
                encoding_errors="surrogateescape",
            )
            client.ping()
        except redis.AuthenticationError as exc:
            raise AdapterUnavailable("redis", f"authentication failed at {masked}: {exc}") from None
        except redis.TimeoutError:
            raise AdapterUnavailable(
                "redis", f"timed out after {settings.socket_timeout:g} s connecting to {masked}"
            ) from None
        except redis.ConnectionError as exc:
            raise AdapterUnavailable("redis", f"cannot connect to {masked}: {_why(exc)}") from None
        except (redis.RedisError, ValueError) as exc:
            raise AdapterUnavailable("redis", f"{masked}: {exc}") from None
        return cls(client, masked)

    @contextmanager
    def guard(self, what: str) -> Iterator[None]:
        """Turn a connection lost or a timeout during a check into AdapterUnavailable."""
        import redis

        try:
            yield
        except redis.TimeoutError:
            raise AdapterUnavailable("redis", f"{what} timed out at {self.url}") from None
        except redis.ConnectionError as exc:
            raise AdapterUnavailable("redis", f"connection lost during {what}: {exc}") from None

    def close(self) -> None:
        """Close the connection pool."""
        self.client.close()


def _why(exc: Exception) -> str:
    message = str(exc)
    if "SSL" in message or "ssl" in message or "wrong version number" in message:
        return f"TLS handshake failed ({message}); check rediss:// versus redis://"
    return message


@dataclass(frozen=True)
class GroupInfo:
    """One consumer group of a stream (XINFO GROUPS)."""

    name: str
    consumers: int
    pending: int
    last_delivered: str
    lag: int | None
    entries_read: int | None = None  # XINFO GROUPS entries-read (Redis 7+; nil until known)


@dataclass(frozen=True)
class ConsumerInfo:
    """One consumer of a group (XINFO CONSUMERS)."""

    name: str
    pending: int
    idle_ms: int


@dataclass(frozen=True)
class StreamInfo:
    """What the stream checks need of one stream, read in one pipelined round trip."""

    name: str
    length: int = 0
    first_id: str = ""
    last_id: str = ""
    last_generated: str = ""
    max_deleted: str = ""
    entries_added: int | None = None
    memory: int | None = None
    groups: tuple[GroupInfo, ...] = ()
    consumers: tuple[tuple[str, ConsumerInfo], ...] = ()
    oldest_pending_idle_ms: tuple[tuple[str, int], ...] = ()
    error: str = ""


def stream_keys(client: Any, match: str, count: int) -> list[str]:
    """Stream keys matching a pattern: SCAN with TYPE, never KEYS."""
    return sorted(text(k) for k in client.scan_iter(match=match, count=count, _type="stream"))


def read_streams(client: Any, names: list[str]) -> dict[str, StreamInfo]:
    """XINFO STREAM + XINFO GROUPS + MEMORY USAGE for every name in one pipeline; consumers of
    groups with pending entries in a second. Per-key errors are returned, not raised; a name
    that is not UTF-8 is not read (error NOT_UTF8)."""
    readable = [name for name in names if not undecodable(name)]
    pipe = client.pipeline(transaction=False)
    for name in readable:
        pipe.xinfo_stream(name)
        pipe.xinfo_groups(name)
        pipe.memory_usage(name)
    replies = pipe.execute(raise_on_error=False) if readable else []
    infos = {name: StreamInfo(name, error=NOT_UTF8) for name in names}
    for i, name in enumerate(readable):
        info, groups, memory = replies[3 * i : 3 * i + 3]
        infos[name] = _stream(name, info, groups, memory)
    return _with_consumers(client, infos)


def _stream(name: str, info: Any, groups: Any, memory: Any) -> StreamInfo:
    if isinstance(info, Exception):
        return StreamInfo(name, error=_reply_error(info))
    first, last = info.get("first-entry"), info.get("last-entry")
    return StreamInfo(
        name=name,
        length=int(info.get("length", 0)),
        first_id=text(first[0]) if first else "",
        last_id=text(last[0]) if last else "",
        last_generated=text(info.get("last-generated-id", "")),
        max_deleted=text(info.get("max-deleted-entry-id", "")),
        entries_added=None if info.get("entries-added") is None else int(info["entries-added"]),
        memory=None if isinstance(memory, Exception) or memory is None else int(memory),
        groups=() if isinstance(groups, Exception) else tuple(_group(g) for g in groups),
    )


def _group(raw: dict[Any, Any]) -> GroupInfo:
    lag, read = raw.get("lag"), raw.get("entries-read")
    return GroupInfo(
        name=text(raw.get("name")),
        consumers=int(raw.get("consumers", 0)),
        pending=int(raw.get("pending", 0)),
        last_delivered=text(raw.get("last-delivered-id", "0-0")),
        lag=None if lag is None else int(lag),
        entries_read=None if read is None else int(read),
    )


def _with_consumers(client: Any, infos: dict[str, StreamInfo]) -> dict[str, StreamInfo]:
    wanted = [
        (s.name, g.name)
        for s in infos.values()
        for g in s.groups
        if (g.pending or g.consumers) and not undecodable(g.name)
    ]
    if not wanted:
        return infos
    pipe = client.pipeline(transaction=False)
    for stream, group in wanted:
        pipe.xinfo_consumers(stream, group)
        pipe.xpending_range(stream, group, min="-", max="+", count=1)
    replies = pipe.execute(raise_on_error=False)
    found: dict[str, list[tuple[str, ConsumerInfo]]] = {}
    oldest: dict[str, list[tuple[str, int]]] = {}
    for i, (stream, group) in enumerate(wanted):
        reply, pending = replies[2 * i], replies[2 * i + 1]
        if isinstance(pending, list) and pending:
            oldest.setdefault(stream, []).append((group, int(pending[0]["time_since_delivered"])))
        if isinstance(reply, Exception):
            continue
        found.setdefault(stream, []).extend(
            (
                group,
                ConsumerInfo(text(c.get("name")), int(c.get("pending", 0)), int(c.get("idle", 0))),
            )
            for c in reply
        )
    return {
        n: dataclasses.replace(
            s, consumers=tuple(found.get(n, ())), oldest_pending_idle_ms=tuple(oldest.get(n, ()))
        )
        for n, s in infos.items()
    }


def _reply_error(exc: Exception) -> str:
    message = str(exc)
    if "WRONGTYPE" in message:
        return "not a stream (WRONGTYPE)"
    if "no such key" in message.lower():
        return "deleted while checking"
    return message


def text(value: Any) -> str:
    """A Redis reply value as str (bytes decoded, undecodable bytes replaced)."""
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
