"""QT705: Redis restarted while the system kept running, and the consumers that did not notice."""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator

import psutil

from qtctl.adapters.redis_client import StreamInfo, read_streams, stream_keys
from qtctl.engine.check import Check
from qtctl.engine.context import CheckContext
from qtctl.engine.findings import CodeDoc, Finding, Severity
from qtctl.engine.wording import duration

READ_SLACK_MS = 1000  # uptime_in_seconds is truncated: idle this close to it means "seen at load"
REDIS_RESTARTED = CodeDoc(
    code="QT705",
    title="Redis restarted",
    severity="warning",
    meaning="Redis' uptime (INFO server) is more than services.redis_uptime_slack_sec shorter "
    "than the system's (since PID 1 started, so a container counts from its own start) and "
    "less than services.redis_restart_recent_sec: it restarted while the fleet kept running. "
    "The detail lists consumer groups with lag or pending entries none of whose consumers has "
    "read since the restart (every consumer idle at least as long as Redis is up), and whether "
    "data was reloaded (AOF/RDB) or lost.",
    why="A service blocked in XREADGROUP BLOCK may never notice the dropped connection: its unit "
    "stays active, its group's lag grows. Without persistence every stream and group is gone.",
    fix="Restart the consumers of the listed groups (their services reconnect), check `journalctl "
    "-u redis-server` for why Redis restarted (OOM kill, crash, package upgrade).",
)


def run(ctx: CheckContext) -> Iterator[Finding]:
    """One finding when Redis restarted recently under a running system."""
    settings = ctx.config.services
    adapter = ctx.redis()
    with adapter.guard("the Redis restart check"):
        pipe = adapter.client.pipeline(transaction=False)
        pipe.info("server")
        pipe.info("persistence")
        pipe.dbsize()
        info, persistence, keys = pipe.execute()
    redis_up = float(info.get("uptime_in_seconds", 0))
    system_up = time.time() - system_start()
    if system_up - redis_up < settings.redis_uptime_slack_sec:
        return
    if redis_up >= settings.redis_restart_recent_sec:
        return
    streams = _streams(ctx)
    stuck = list(_stuck_groups(streams.values(), redis_up * 1000))
    detail = [
        f"Redis up {duration(redis_up)}, the system up {duration(system_up)}",
        _persistence(persistence, keys),
        *(f"group not read since the restart: {line}" for line in stuck),
    ]
    yield Finding(
        REDIS_RESTARTED.code,
        Severity.WARNING,
        "redis",
        f"Redis restarted {duration(redis_up)} ago while the system has been up "
        f"{duration(system_up)}"
        + (f"; {len(stuck)} consumer group(s) have not read since" if stuck else ""),
        cause="restarted",
        detail=tuple(detail),
        fix_hint=REDIS_RESTARTED.fix,
    )


def system_start() -> float:
    """When PID 1 started: the boot on a host, the container's start inside one."""
    try:
        return float(psutil.Process(1).create_time())
    except (psutil.Error, OSError):
        return float(psutil.boot_time())


def _streams(ctx: CheckContext) -> dict[str, StreamInfo]:
    """The stream checks' read when they ran in this doctor run, else one of its own."""

    def read() -> dict[str, StreamInfo]:
        adapter = ctx.redis()
        with adapter.guard("the Redis restart check"):
            count = ctx.config.streams.scan_count
            return read_streams(adapter.client, stream_keys(adapter.client, "*", count))

    return ctx.memo("stream_infos", read)  # type: ignore[no-any-return]


def _stuck_groups(streams: Iterable[StreamInfo], uptime_ms: float) -> Iterator[str]:
    for stream in streams:
        consumers: dict[str, list[int]] = {}
        for group_name, consumer in stream.consumers:
            consumers.setdefault(group_name, []).append(consumer.idle_ms)
        for group in stream.groups:
            behind = (group.lag or 0) + group.pending
            idles = consumers.get(group.name, [])
            if behind and all(idle >= uptime_ms - READ_SLACK_MS for idle in idles):
                who = f"{len(idles)} consumer(s) idle" if idles else "no consumers"
                counts = f"lag {group.lag}, pending {group.pending}"
                yield f"{stream.name} {group.name} ({counts}; {who})"


def _persistence(info: dict[str, object], keys: int) -> str:
    aof = str(info.get("aof_enabled", "0")) == "1"
    loaded = info.get("rdb_last_load_keys_loaded")
    if keys == 0:
        return "the database is empty: every stream, group and state key the fleet had is gone"
    source = "AOF" if aof else "RDB snapshot"
    extra = f", {loaded} keys loaded at start" if loaded is not None else ""
    return f"persistence: {source}{extra}; {keys} keys now"


CHECK = Check(name="redis_restart", codes=(REDIS_RESTARTED,), run=run)
