"""Repairs that respect the chain: the root first, its consequences only once it is gone, and no
more restarts than the budget and the rate limit allow.

With Redis down (QT400), fix restarts Redis' own unit first when `fix.redis_unit` names one
on this host, and holds the restart of every unit that needs Redis until the re-check finds it
up (the second pass of the same run); without such a unit it holds them all, saying why.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from qtctl.diagnosis.fleet import FleetUnit
from qtctl.engine.findings import Finding
from qtctl.errors import AdapterUnavailable
from qtctl.fix.actions import Action, ResetFailed, Restart
from qtctl.fix.budget import LedgerRefused, RestartLedger, over_budget, rate_limited
from qtctl.fix.policy import find_unit, never_restart, restart_permission
from qtctl.fix.repair import Planning, Repair
from qtctl.fix.restart_rules import permanent_cause, uses_redis

OVERRIDABLE = ("", "unsafe", "live-mode", "held")  # a chain hold says more than these


def redis_first(down: Finding, repairs: Sequence[Repair], planning: Planning) -> list[Repair]:
    """The Redis unit's restart first, then the other repairs, restarts of units that need
    Redis held behind it."""
    root = _redis_repair(down, planning)
    name = planning.ctx.config.fix.redis_unit
    if root.runnable:
        why = f"root cause first: Redis is down (QT400); fix restarts {name} first, then this unit"
    else:
        why = f"root cause first: Redis is down (QT400) and {root.held}; a restart would fail"
    held = [_behind_redis(r, why, name, planning) for r in repairs]
    return [root, *held]


def _redis_repair(down: Finding, planning: Planning) -> Repair:
    name = planning.ctx.config.fix.redis_unit
    if not name:
        return Repair(
            down,
            held="fix.redis_unit names no unit on this host: start the Redis server by hand",
            manual="start the Redis the fleet uses (redis.url); set fix.redis_unit to its unit",
            rule="chain",
        )
    unit = _load(name, planning)
    if unit is None or unit.load_state != "loaded":
        state = unit.load_state if unit else "unknown to systemd"
        return Repair(down, held=f"fix.redis_unit = {name} is {state} on this host", rule="chain")
    actions: tuple[Action, ...] = (Restart(unit.name),)
    if unit.active_state == "failed":
        actions = (ResetFailed(unit.name), *actions)
    config = planning.ctx.config
    held = (
        never_restart(unit, config)
        or permanent_cause(unit)
        or restart_permission(unit, planning.options, planning.live)
    )
    return Repair(down, actions, held=held, rule="chain" if held else "")


def _load(name: str, planning: Planning) -> FleetUnit | None:
    """The unit by name, loading it if systemd has not (an inactive unit nothing references)."""
    known = find_unit(planning.units, name)
    if known is not None:
        return known
    try:
        systemd = planning.ctx.systemd()
        path = systemd.manager_call(b"LoadUnit", b"s", name.encode())
        props = systemd.unit_properties(path, name.endswith(".service"))
    except AdapterUnavailable:
        return None
    load, active, sub = (str(props.get(p) or "") for p in ("LoadState", "ActiveState", "SubState"))
    return FleetUnit(name, path, load, active, sub, lambda _path: props)


def _behind_redis(repair: Repair, why: str, redis_unit: str, planning: Planning) -> Repair:
    if repair.rule not in OVERRIDABLE:
        return repair
    for unit_name in restarted(repair):
        unit = find_unit(planning.units, unit_name)
        if unit is not None and uses_redis(unit, repair.finding.cause, redis_unit):
            return dataclasses.replace(repair, held=why, rule="chain")
    return repair


def within_budget(repairs: Sequence[Repair], planning: Planning, done: int) -> list[Repair]:
    """Hold restarts beyond `fix.max_restarts` for this run (`done` already ran) and those of a
    unit qtctl restarted `fix.restart_limit` times within `fix.restart_window_sec`."""
    settings = planning.ctx.config.fix
    try:
        history = RestartLedger(settings).read()
        refused = ""
    except LedgerRefused as exc:
        history, refused = {}, str(exc)
    counted: set[str] = set()
    out = []
    for repair in repairs:
        units = restarted(repair)
        if not units or not repair.runnable:
            out.append(repair)
            continue
        why, rule = refused, "rate-limit"
        why = why or next(filter(None, (rate_limited(u, history, settings) for u in units)), "")
        new = [u for u in units if u not in counted]
        if not why:
            why, rule = over_budget(done + len(counted), len(new), settings), "budget"
        if why:
            out.append(dataclasses.replace(repair, held=why, rule=rule))
            continue
        counted.update(new)
        out.append(repair)
    return out


def restarted(repair: Repair) -> list[str]:
    """The units a repair restarts."""
    return [a.unit for a in repair.actions if isinstance(a, Restart)]
