"""Hand-packed Redis I/O for the risk kernel's cycle, the one place qtctl goes around redis-py's
command API: commands as RESP text sent as they are built, replies read straight off the
socket, and JSON formatted by template. Everything else, the bridge included, uses redis-py.

Why: the cycle for 1,000 positions (3,000 HMGETs, then an HSET of about 35 fields and an XADD
per proposal) must stay under 50 ms on a real Redis; it measured 36.6-48.3 ms
(`bench/risk_kernel.py`), under 2 ms to spare at its slowest. `bench/resp_ab.py` runs that
cycle with one piece at a time done the plain way, alternating in one process: redis-py's
pipeline for the reads costs 1.29-1.56x the cycle, for the writes 1.64-1.82x, all of it plain
with json 2.0-2.5x; a `json.dumps` per payload 1.04-1.15x, redis-py's `read_response` per reply
1.04-1.15x. Alone (`bench/resp_pieces.py`) those take 5.4-6.7x and 1.8-2.3x the time of the
template and of the reader here, and a `json.dumps` per weights column 2.3x (2 ms a cycle).

What it relies on in redis-py, pinned in pyproject.toml and checked by
`tests/test_resp_redis_py.py` (which fails if any of it moves): `ConnectionPool.get_connection()`
and `release()`, `Connection.send_packed_command()` writing the bytes as given,
`Connection.disconnect()`, `Connection.encoder` (`encoding`, `decode_responses`), and the
private `Connection._sock`, the connected socket, read here with a hiredis `Reader` of our own
while redis-py's parser holds none of its bytes. Error replies keep Redis' code (`OOM command
not allowed ...`), where redis-py strips the codes it names. Not for connections that subscribe
or track keys: a push message would be taken for a reply.

Lengths are taken with `len()` on the text, which is the byte length for ASCII; a row that is
not ASCII is rebuilt with exact UTF-8 lengths, so any text stays correct.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from itertools import chain
from json.encoder import encode_basestring_ascii as quote
from typing import TYPE_CHECKING, Any

import hiredis

if TYPE_CHECKING:
    import redis

MULTI = "*1\r\n$5\r\nMULTI\r\n"
EXEC = "*1\r\n$4\r\nEXEC\r\n"


def command(*args: str) -> str:
    """One command in RESP (exact UTF-8 lengths)."""
    return f"*{len(args)}\r\n" + "".join(_bulk(a) for a in args)


def _bulk(arg: str) -> str:
    return f"${len(arg.encode())}\r\n{arg}\r\n"


class Template:
    """A command shape; `None` marks an argument that varies per row."""

    def __init__(self, *shape: str | None) -> None:
        self.shape = shape
        parts = [f"*{len(shape)}\r\n"]
        for arg in shape:
            parts.append("$%d\r\n%s\r\n" if arg is None else _bulk(arg).replace("%", "%%"))
        self.format = "".join(parts)

    def rows(self, *columns: Sequence[str]) -> list[str]:
        """One command per row; `columns` give the varying arguments in shape order."""
        lengths = [list(map(len, column)) for column in columns]
        interleaved = [seq for pair in zip(lengths, columns, strict=True) for seq in pair]
        out = [self.format % row for row in zip(*interleaved, strict=True)]
        if not all(map(str.isascii, out)):
            out = [row if row.isascii() else self._exact(columns, i) for i, row in enumerate(out)]
        return out

    def _exact(self, columns: Sequence[Sequence[str]], i: int) -> str:
        values = iter(column[i] for column in columns)
        return command(*(next(values) if arg is None else arg for arg in self.shape))


def execute(client: redis.Redis, commands: Sequence[str], transaction: bool = False) -> list[Any]:
    """Send every command in one write and return their replies, in order (see `send`)."""
    return send(client, [commands], transaction)


def send(
    client: redis.Redis, chunks: Iterable[Sequence[str]], transaction: bool = False
) -> list[Any]:
    """Send each chunk of commands as soon as the caller has built it (Redis parses one while
    the next is built), then return every reply, in order.

    An error reply is returned in its place (a `redis.ResponseError`), so one bad key never
    leaves the connection half read. In a transaction the replies are EXEC's, and the first
    error is raised: a command Redis refused to queue (nothing was applied), or one that failed
    inside EXEC (the others were applied, as Redis does). A connection lost midway is dropped
    from the pool and the error raised: nothing is half read on a connection that is reused."""
    import redis

    pool = client.connection_pool
    conn: Any = pool.get_connection()  # redis-py leaves Connection's methods untyped
    count = 0
    try:
        for chunk in chunks:
            if chunk:
                head = MULTI if transaction and not count else ""
                conn.send_packed_command([(head + "".join(chunk)).encode()])
                count += len(chunk)
        if not count:
            return []
        if transaction:
            conn.send_packed_command([EXEC.encode()])
        replies = _read(conn, count + 2 * transaction)
    except TimeoutError:
        conn.disconnect()
        raise redis.TimeoutError(f"timed out reading {count} replies") from None
    except OSError as exc:
        conn.disconnect()
        raise redis.ConnectionError(f"connection lost reading replies: {exc}") from None
    except BaseException:  # a half-sent transaction dies with its connection: nothing applied
        conn.disconnect()
        raise
    finally:
        pool.release(conn)
    if not transaction:
        return replies
    errors = [r for r in replies if isinstance(r, redis.ResponseError)]
    result = replies[-1]
    if isinstance(result, list):
        errors += [r for r in result if isinstance(r, redis.ResponseError)]
    if errors:
        raise errors[0]
    assert isinstance(result, list), result
    return result


def _read(conn: Any, count: int) -> list[Any]:
    """`count` replies off the socket through one hiredis reader: about 1-2 us each, against
    2-4 us through redis-py's per-reply `read_response`, which also strips error codes."""
    import redis

    sock = conn._sock
    if sock is None:
        raise redis.ConnectionError("connection closed before its replies were read")
    encoder = conn.encoder
    encoding = encoder.encoding if encoder.decode_responses else None
    # errors="replace": one position hash holding bytes that are not UTF-8 must not stop the
    # cycle for every position (a crash loop, no stop updates): that value reads as U+FFFD text,
    # which the kernel then refuses as a malformed input of that position alone.
    reader = hiredis.Reader(replyError=redis.ResponseError, encoding=encoding, errors="replace")
    replies: list[Any] = []
    while len(replies) < count:
        reply = reader.gets()
        if reply is not False:
            replies.append(reply)
            continue
        data = sock.recv(1 << 20)
        if not data:
            raise redis.ConnectionError("connection closed by the server")
        reader.feed(data)
    return replies


def json_rows(fields: Mapping[str, str | Sequence[str]], count: int) -> list[str]:
    """`count` JSON objects, byte for byte what `json.dumps(row, separators=(",", ":"))` writes
    for each: a `str` value is the same in every row, a sequence holds one value per row.

    One `%` format per row: a column with nothing to escape is inserted as it is (one check
    for the whole column), any other is quoted value by value first."""
    parts, columns = [], []
    for name, value in fields.items():
        key = quote(name).replace("%", "%%")
        if isinstance(value, str):
            parts.append(key + ":" + quote(value).replace("%", "%%"))
            continue
        if len(value) != count:
            raise ValueError(f"{name}: {len(value)} values for {count} rows")
        plain = _plain(value)
        parts.append(f'{key}:"%s"' if plain else f"{key}:%s")
        columns.append(value if plain else list(map(quote, value)))
    fmt = "{" + ",".join(parts) + "}"
    if not columns:
        return [fmt % ()] * count
    return [fmt % row for row in zip(*columns, strict=True)]


def _plain(column: Sequence[str]) -> bool:
    """No value needs escaping: quoting only ever adds characters."""
    joined = "".join(column)
    return len(quote(joined)) == len(joined) + 2


def json_number_rows(names: Sequence[str], rows: Iterable[Sequence[float]]) -> list[str]:
    """Each row of floats as `json.dumps(dict(zip(names, row)))` writes it: one `%r` format per
    row (json writes a finite float as its repr); a NaN or an infinity goes through json."""
    fmt = "{" + ", ".join(quote(name).replace("%", "%%") + ": %r" for name in names) + "}"
    table = [tuple(row) for row in rows]
    if all(map(math.isfinite, chain.from_iterable(table))):
        return [fmt % row for row in table]
    return [json.dumps(dict(zip(names, row, strict=True))) for row in table]
