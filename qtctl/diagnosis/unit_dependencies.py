"""Units left down by what they Require=: a unit that does not exist, or one that failed.

systemd 252, checked in the sandbox: a unit that `Requires=` a unit without a unit file still
starts when a target pulls it in at boot, but every later `systemctl start` or `restart` of it is
refused ("Unit X not found."), leaving it inactive with Result=success and no journal line of
its own. A `Requires=`+`After=` unit whose start fails leaves it inactive too ("Dependency failed
for", job result `dependency`). Either way it is down and nothing in `systemctl --failed` says so.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from qtctl.adapters.systemd import UnitRow
from qtctl.diagnosis.fleet import FleetUnit
from qtctl.engine.context import CheckContext

REQUIRING = ("Requires", "Requisite", "BindsTo")
SHOULD_RUN = ("enabled", "enabled-runtime")
PROVIDER_FORMS = ("{core}.service", "{core}-server.service", "{core}d.service")


@dataclass(frozen=True)
class HeldDown:
    """A unit that should run and is down because of a dependency."""

    unit: FleetUnit
    kind: str  # dependency-missing | dependency-down
    directive: str  # Requires, Requisite, BindsTo
    dependency: str
    provider: str = ""  # the one existing unit that evidently provides a missing dependency


def held_down(ctx: CheckContext, units: Sequence[FleetUnit]) -> list[HeldDown]:
    """Inactive fleet units that should run and whose required units are missing or failed."""
    return _dependencies(ctx, [u for u in units if _should_run(u)], failed_too=True)


def refused_restarts(ctx: CheckContext, units: Sequence[FleetUnit]) -> dict[str, HeldDown]:
    """Failed units that require a unit without a unit file: systemd refuses to restart them
    ("Failed to schedule restart job: Unit X not found."), whatever made them exit."""
    failed = [u for u in units if u.active_state == "failed"]
    found: dict[str, HeldDown] = {}
    for held in _dependencies(ctx, failed, failed_too=False):
        found.setdefault(held.unit.name, held)
    return found


def _dependencies(ctx: CheckContext, down: Sequence[FleetUnit], failed_too: bool) -> list[HeldDown]:
    wanted = sorted({dep for u in down for _, dep in _required(u)})
    if not wanted:
        return []
    rows = _rows(ctx, wanted)
    found = []
    for unit in down:
        for directive, dep in _required(unit):
            row = rows.get(dep)
            if row is None:
                continue
            if row.load_state == "not-found":
                provider = provider_of(ctx, dep)
                found.append(HeldDown(unit, "dependency-missing", directive, dep, provider))
            elif failed_too and row.active_state == "failed" and _never_active(unit):
                found.append(HeldDown(unit, "dependency-down", directive, dep))
    return found


def provider_of(ctx: CheckContext, missing: str) -> str:
    """The one loaded unit that evidently stands for a missing one: `quantum-redis.service` ->
    `redis.service`, `redis-server.service` or `redisd.service` (aliases count once), or ''."""
    core = _core(missing, ctx.config.fleet.units)
    if not core:
        return ""
    names = [form.format(core=core) for form in PROVIDER_FORMS]
    rows = _rows(ctx, [n for n in names if n != missing])
    ids = {row.name for row in rows.values() if row.load_state == "loaded"}
    return ids.pop() if len(ids) == 1 else ""


def _core(name: str, patterns: Iterable[str]) -> str:
    """The name without `.service` and without the fleet's own prefix (`quantum-`)."""
    stem = name.removesuffix(".service")
    if "@" in stem or stem == name:
        return ""
    for pattern in patterns:
        head = pattern.split("*", 1)[0]
        if head and fnmatch.fnmatchcase(name, pattern) and stem.startswith(head):
            stem = stem[len(head) :]
            break
    return stem.strip("-_.")


def _should_run(unit: FleetUnit) -> bool:
    if unit.load_state != "loaded" or unit.active_state != "inactive":
        return False
    if unit.props.get("Type") == "oneshot" and unit.props.get("ExecMainStartTimestamp"):
        return False  # it ran and is done: inactive is its healthy state
    return unit.file_state in SHOULD_RUN or bool(unit.props.get("WantedBy"))


def _never_active(unit: FleetUnit) -> bool:
    """Its start job failed on the dependency ("Dependency failed for"): it never became active
    this boot. A unit that ran and was stopped since is an operator's choice, not this."""
    return not unit.props.get("ActiveEnterTimestamp")


def _required(unit: FleetUnit) -> list[tuple[str, str]]:
    return [(key, str(dep)) for key in REQUIRING for dep in unit.props.get(key) or []]


def _rows(ctx: CheckContext, names: list[str]) -> dict[str, UnitRow]:
    """name -> what systemd knows of it (one D-Bus call; one row per name, in order)."""
    rows = ctx.systemd().units_by_names(names)
    return dict(zip(names, rows, strict=False))
