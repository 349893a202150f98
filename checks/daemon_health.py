"""QT502/QT503: is what the fleet's daemons publish fresh and sane (RL agent, stream bridge)?"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping

from qtctl.engine.check import Check
from qtctl.engine.context import CheckContext
from qtctl.engine.findings import CodeDoc, Finding, Severity
from qtctl.stream_ids import id_ms

STATS_TIME_FIELDS = ("last_update", "last_update_time", "updated_at", "timestamp", "ts")
EXPERIENCE_FIELDS = ("experiences_processed", "experiences", "experience_count")

RL_UNHEALTHY = CodeDoc(
    code="QT502",
    title="RL agent unhealthy",
    severity="warning/error",
    meaning="The RL agent's stats hash (rl.stats_key) was not updated within twice its "
    "interval, or its recent rewards are degenerate: all identical (every reward -1.0 is what "
    "PnL 0.00 / -100 % garbage records produce), outside [-1, 1], or zero experiences while "
    "trade.closed grows.",
    why="An agent that learns from garbage sizes real positions on garbage.",
    fix="Stop the agent, find the producer of the bad records (QT5xx detail names the "
    "stream), and retrain from validated experiences only.",
)
BRIDGE_LAG = CodeDoc(
    code="QT503",
    title="bridge lag",
    severity="warning/error",
    meaning="For each bridge.routes `source->destination`: source entries newer than the "
    "newest bridged entry, and how old the oldest of them is.",
    why="Readers of the destination act on old executions, or on none at all.",
    fix="Check the bridge unit (`qtctl doctor --select QT1`), its route names (QT405), and "
    "restart it.",
)


def run(ctx: CheckContext) -> Iterator[Finding]:
    """The RL agent's stats and rewards, then every bridge route."""
    adapter = ctx.redis()
    with adapter.guard("the daemon health check"):
        yield from _rl(ctx, adapter.client)
        for route in _routes(ctx):
            yield from _bridge(ctx, adapter.client, route)


def _routes(ctx: CheckContext) -> list[str]:
    """bridge.routes, one `src->dst` per destination."""
    routes: list[str] = []
    for text in ctx.config.bridge.routes:
        source, _, targets = text.partition("->")
        for target in targets.split("|"):
            route = f"{source.strip()}->{target.strip()}"
            if target.strip() and route not in routes:
                routes.append(route)
    return routes


def _rl(ctx: CheckContext, client: object) -> Iterator[Finding]:
    settings = ctx.config.daemons
    prefix = ctx.config.streams.prefix
    pipe = client.pipeline(transaction=False)  # type: ignore[attr-defined]
    pipe.hgetall(ctx.config.rl.stats_key)
    pipe.xrevrange(prefix + ctx.config.rl.reward_stream, count=settings.rl_recent)
    pipe.xlen(prefix + "trade.closed")
    stats, rewards, closed = pipe.execute(raise_on_error=False)
    stats = stats if isinstance(stats, dict) else {}
    rewards = rewards if isinstance(rewards, list) else []
    closed = closed if isinstance(closed, int) else 0
    if not stats and not rewards:
        return  # no RL agent on this fleet
    problems = _stats_problems(stats, closed, ctx.clock(), 2 * settings.rl_stats_interval_sec)
    problems += _reward_problems([fields for _, fields in rewards])
    if problems:
        worst = max(p[0] for p in problems)
        yield Finding(
            RL_UNHEALTHY.code,
            worst,
            ctx.config.rl.stats_key,
            problems[0][1],
            cause="rl-unhealthy",
            detail=tuple(p[1] for p in problems),
            fix_hint=RL_UNHEALTHY.fix,
        )


def _stats_problems(
    stats: Mapping[str, str], closed: int, now: float, max_age: float
) -> list[tuple[Severity, str]]:
    if not stats:
        return [(Severity.WARNING, "no stats hash: the agent never published its state")]
    found = []
    updated = next((_float(stats[f]) for f in STATS_TIME_FIELDS if f in stats), 0.0)
    if updated > 1e11:
        updated /= 1000
    if not updated or now - updated > max_age:
        age = f"{now - updated:.0f} s ago" if updated else "never"
        found.append((Severity.WARNING, f"stats last updated {age} (limit {max_age:.0f} s)"))
    experiences = next((_float(stats[f]) for f in EXPERIENCE_FIELDS if f in stats), None)
    if experiences == 0 and closed > 0:
        found.append(
            (Severity.WARNING, f"zero experiences while trade.closed holds {closed} entries")
        )
    return found


def _reward_problems(entries: list[Mapping[str, str]]) -> list[tuple[Severity, str]]:
    rewards = [_float(e["reward"]) for e in entries if "reward" in e]
    if not rewards:
        return []
    found = []
    bad = [r for r in rewards if not math.isfinite(r) or not -1 <= r <= 1]
    if bad:
        found.append(
            (
                Severity.ERROR,
                f"{len(bad)} of the last {len(rewards)} rewards are "
                f"outside [-1, 1] (e.g. {bad[0]})",
            )
        )
    if len(rewards) >= 10 and len(set(rewards)) == 1:
        found.append(
            (
                Severity.ERROR,
                f"all {len(rewards)} recent rewards are {rewards[0]}: "
                "learning from degenerate records",
            )
        )
    return found


def _bridge(ctx: CheckContext, client: object, route: str) -> Iterator[Finding]:
    settings = ctx.config.daemons
    prefix = ctx.config.streams.prefix
    source, _, destination = (part.strip() for part in route.partition("->"))
    src = source if source.startswith(prefix) or ":" in source else prefix + source
    dst = (
        destination
        if destination.startswith(prefix) or ":" in destination
        else (prefix + destination)
    )
    pipe = client.pipeline(transaction=False)  # type: ignore[attr-defined]
    pipe.xrevrange(dst, count=1)
    pipe.xrevrange(src, count=1)
    pipe.hgetall(ctx.config.bridge.state_prefix + src)  # qtctl's bridge: its exact position
    last_dst, last_src, state = pipe.execute(raise_on_error=False)
    if not isinstance(last_src, list) or not last_src:
        return  # nothing to bridge yet
    state = state if isinstance(state, dict) else {}
    newest = last_dst[0][0] if isinstance(last_dst, list) and last_dst else ""
    last = state.get("position", "") or newest  # dead-lettered entries count as handled
    bridged_ms = id_ms(last) if last else 0
    start = f"({last}" if bridged_ms else "-"
    cap = settings.bridge_lag_error + 1
    waiting = client.xrange(src, min=start, max="+", count=cap)  # type: ignore[attr-defined]
    if not waiting:
        return
    age = ctx.clock() - id_ms(waiting[0][0]) / 1000
    count = f"{len(waiting)}{'+' if len(waiting) >= cap else ''}"
    if len(waiting) >= settings.bridge_lag_error or age >= settings.bridge_age_error_sec:
        severity = Severity.ERROR
    elif len(waiting) >= settings.bridge_lag_warn or age >= settings.bridge_age_warn_sec:
        severity = Severity.WARNING
    else:
        return
    yield Finding(
        BRIDGE_LAG.code,
        severity,
        f"{src} -> {dst}",
        f"{count} source entries not bridged yet, the oldest {age:.0f} s old"
        + ("" if bridged_ms else "; the destination is empty"),
        cause="bridge-lag",
        fix_hint=BRIDGE_LAG.fix,
    )


def _float(value: object) -> float:
    try:
        return float(str(value))
    except ValueError:
        return math.nan


CHECK = Check(name="daemon_health", codes=(RL_UNHEALTHY, BRIDGE_LAG), run=run)
