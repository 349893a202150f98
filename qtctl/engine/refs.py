"""Refs the checks attach to findings for the incident rules: what a unit runs, which Redis it
uses, who needs it. Pure: built from values the checks already read."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from qtctl.engine.findings import Ref

REDIS_URL_VARS = ("REDIS_URL", "QTCTL__REDIS__URL", "REDIS_URI")


def unit_refs(
    exec_path: str, argv: Sequence[str], props: Mapping[str, Any], missing: str = ""
) -> tuple[Ref, ...]:
    """A unit's refs: the program and absolute script arguments it runs, and the Redis it
    uses: the one its failed run could not reach (a cause's `missing`, `redis HOST:PORT`) or
    the one its environment names (REDIS_URL=, or REDIS_HOST=/REDIS_PORT=)."""
    runs = [exec_path, *(a for a in argv[1:] if a.startswith("/"))]
    refs = [Ref("runs", path) for path in dict.fromkeys(runs) if path]
    kind, _, named = missing.partition(" ")
    env = _env_redis(_environment(props.get("Environment") or ()))
    addresses = [named if kind == "redis" else "", env]
    return (*refs, *(Ref("redis", a) for a in dict.fromkeys(addresses) if a))


def redis_ref(url: str) -> tuple[Ref, ...]:
    """The Redis a URL points at, as `host:port` or a socket path (never the password)."""
    address = redis_address(url)
    return (Ref("redis", address),) if address else ()


def redis_address(url: str) -> str:
    """`host:port` of a redis:// or rediss:// URL, the path of a unix:// one, '' if unparsable."""
    try:
        parts = urlsplit(url)
        if parts.scheme == "unix":
            return parts.path
        port = parts.port or 6379
    except ValueError:
        return ""
    host = parts.hostname or "127.0.0.1"
    return f"{'127.0.0.1' if host == 'localhost' else host}:{port}"


def needed_by(names: Iterable[str]) -> tuple[Ref, ...]:
    """Refs to the units that want, require or order against the finding's unit."""
    return tuple(Ref("needed-by", name) for name in dict.fromkeys(names))


def needs(unit: str) -> tuple[Ref, ...]:
    """The ref to a unit the finding's unit Requires= (or BindsTo=, Requisite=)."""
    return (Ref("needs", unit),) if unit else ()


def written_by(unit: str) -> tuple[Ref, ...]:
    """The ref to a stream's configured producer unit, if one is configured."""
    return (Ref("written-by", unit),) if unit else ()


def _environment(entries: Iterable[object]) -> dict[str, str]:
    pairs = (str(entry).partition("=") for entry in entries)
    return {key: value for key, sep, value in pairs if sep}


def _env_redis(env: Mapping[str, str]) -> str:
    for key in REDIS_URL_VARS:
        if env.get(key):
            return redis_address(env[key])
    if "REDIS_HOST" in env or "REDIS_PORT" in env:
        host = env.get("REDIS_HOST") or "127.0.0.1"
        return redis_address(f"redis://{host}:{env.get('REDIS_PORT') or 6379}")
    return ""
