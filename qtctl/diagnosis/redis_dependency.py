"""dependency-down for Redis: a unit whose failed run could not reach the very Redis that
doctor finds down (QT400) failed because Redis is down, not for a reason of its own.

Evidence: the failed run's journal names the address it could not connect to (redis-py's
`Error 111 connecting to HOST:PORT`; or a bare `ConnectionRefusedError` whose traceback's
source lines name the host and port, as `socket.create_connection(('127.0.0.1', 6379))`), that
address is the fleet's Redis (`redis.url`), and doctor cannot reach it either. A unit refused by
another Redis keeps `redis-unreachable` (or its `python-exception`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from urllib.parse import urlsplit

from qtctl.diagnosis.cause import Cause
from qtctl.engine.context import CheckContext
from qtctl.errors import AdapterUnavailable

REFUSED_AT = re.compile(r"connecting to (?:\[)?([\w.:-]+?)(?:\])?:(\d+)\b")
REFUSED = re.compile(r"^\s*(ConnectionRefusedError|ConnectionResetError)\b|\[Errno 111\]")
# a quoted host and a port in one source line: ('127.0.0.1', 6379), "localhost", port=6379
SOURCE_ADDRESS = re.compile(r"""['"]([\w.:-]+)['"]\s*,\s*(?:port\s*=\s*)?(\d{2,5})\b""")
LOCAL = {"localhost": "127.0.0.1", "::1": "127.0.0.1"}


def redis_down(ctx: CheckContext, cause: Cause, lines: Sequence[str]) -> Cause:
    """`cause`, or dependency-down when the Redis it could not reach is the fleet's and down."""
    if cause.kind not in ("redis-unreachable", "python-exception"):
        return cause
    fleet = _fleet_redis(ctx.config.redis.url)
    named = {_address(m.group(1), m.group(2)) for m in map(REFUSED_AT.search, lines) if m}
    if cause.kind == "python-exception":
        named = _refused_in_source(cause, lines)
    if not fleet or fleet not in named:
        return cause
    try:
        ctx.redis()
    except AdapterUnavailable:
        return Cause(
            "dependency-down",
            f"the fleet's Redis at {fleet} is down (QT400): {cause.summary}",
            missing=f"redis {fleet}",
        )
    return cause


def _refused_in_source(cause: Cause, lines: Sequence[str]) -> set[str]:
    """The addresses a traceback's source lines name, when its exception (the cause's own
    summary) is a refused connection; none for any other exception."""
    if not REFUSED.search(cause.summary):
        return set()
    return {_address(m.group(1), m.group(2)) for m in map(SOURCE_ADDRESS.search, lines) if m}


def _fleet_redis(url: str) -> str:
    try:
        parts = urlsplit(url)
        if parts.scheme not in ("redis", "rediss"):
            return ""
        return _address(parts.hostname or "127.0.0.1", str(parts.port or 6379))
    except ValueError:
        return ""


def _address(host: str, port: str) -> str:
    return f"{LOCAL.get(host, host)}:{port}"
