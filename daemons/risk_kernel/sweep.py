"""On start, delete every proposal (and kernel state) whose position does not exist, whoever
published it: a proposal left by an earlier process or another publisher is not a stop anyone
should act on (the incident's `SL=106.1072 TP=106.0695` outlived its position)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from qtctl.escaping import shown

if TYPE_CHECKING:
    import redis

    from qtctl.config import RiskSettings

log = logging.getLogger("qtctl.risk_kernel")


def sweep(client: redis.Redis, settings: RiskSettings) -> int:
    """Delete orphan proposal hashes and state fields, logging each; returns how many."""
    prefix = settings.proposal_prefix.encode()
    keys = list(client.scan_iter(match=prefix + b"*", count=1000, _type="hash", NEVER_DECODE=True))
    orphans = _absent(client, settings, [k[len(prefix) :] for k in keys])
    for name in orphans:
        log.warning("deleted proposal %s: no such position", _name(prefix + name))
    if orphans:
        client.delete(*(prefix + name for name in orphans))
    if client.type(settings.state_key) not in (b"hash", "hash"):
        return len(orphans)
    fields = client.hkeys(settings.state_key)
    stale = _absent(client, settings, [f if isinstance(f, bytes) else f.encode() for f in fields])
    if stale:
        log.warning("dropped the kernel state of %d closed position(s)", len(stale))
        client.hdel(settings.state_key, *stale)
    return len(orphans) + len(stale)


def _absent(client: redis.Redis, settings: RiskSettings, symbols: list[bytes]) -> list[bytes]:
    position = settings.position_prefix.encode()
    pipe = client.pipeline(transaction=False)
    for symbol in symbols:
        pipe.exists(position + symbol)
    return [s for s, found in zip(symbols, pipe.execute(), strict=True) if not found]


def _name(raw: bytes) -> str:
    return shown(raw.decode("utf-8", "surrogateescape"))
