"""QT406: Redis settings that put the fleet's streams at risk."""

from __future__ import annotations

from collections.abc import Iterator

from qtctl.engine.check import Check
from qtctl.engine.context import CheckContext
from qtctl.engine.findings import CodeDoc, Finding, Severity

EVICTING = ("allkeys-lru", "allkeys-lfu", "allkeys-random")
MEMORY_RISK = CodeDoc(
    code="QT406",
    title="Redis memory policy risk",
    severity="warning",
    meaning="maxmemory-policy can evict stream keys (allkeys-*), memory is within "
    "redis.memory_warn_pct of maxmemory, or persistence (AOF and RDB) is off while "
    "redis.require_persistence is true.",
    why="An evicted stream loses every entry at once; at maxmemory under noeviction every XADD "
    "fails; without persistence a Redis restart empties the fleet's state.",
    fix="Use noeviction (or volatile-*), raise maxmemory or trim streams, enable appendonly.",
)


def run(ctx: CheckContext) -> Iterator[Finding]:
    """One finding per risk, from CONFIG GET and INFO memory in one pipeline."""
    settings = ctx.config.redis
    adapter = ctx.redis()
    with adapter.guard("the Redis settings check"):
        pipe = adapter.client.pipeline(transaction=False)
        for name in ("maxmemory-policy", "maxmemory", "appendonly", "save"):
            pipe.config_get(name)
        pipe.info("memory")
        replies = pipe.execute(raise_on_error=False)
    if any(isinstance(r, Exception) for r in replies[:4]):
        return  # CONFIG is disabled or renamed (managed Redis): nothing to judge
    policy, maxmemory, aof, save = (next(iter(r.values()), "") for r in replies[:4])
    memory = replies[4] if isinstance(replies[4], dict) else {}
    if policy in EVICTING:
        yield _finding(f"maxmemory-policy {policy} can evict stream keys", "evicting-policy")
    limit, used = int(maxmemory or 0), int(memory.get("used_memory", 0))
    if limit and used >= limit * settings.memory_warn_pct / 100:
        yield _finding(
            f"memory {used / 2**20:.0f} MiB of maxmemory {limit / 2**20:.0f} MiB "
            f"({100 * used / limit:.0f} %)",
            "near-maxmemory",
        )
    if settings.require_persistence and aof == "no" and not save:
        yield _finding(
            "persistence is off (appendonly no, no save points) but "
            "redis.require_persistence is true",
            "no-persistence",
        )


def _finding(message: str, cause: str) -> Finding:
    return Finding(
        MEMORY_RISK.code, Severity.WARNING, "redis", message, cause=cause, fix_hint=MEMORY_RISK.fix
    )


CHECK = Check(name="redis_server", codes=(MEMORY_RISK,), run=run)
