"""`qtctl install --on-failure`: an `OnFailure=` drop-in for each fleet unit, written through
fix's journal (backed up, journaled, undone by `qtctl fix --undo ID`).

Every fleet unit file on disk and every loaded fleet unit gets one. Skipped, with the reason:
masked units (nothing runs them), protected units (qtctl changes nothing of a protected unit),
units systemd could not load, and qtctl-notify@ itself (a failing notifier must not notify about
itself)."""

from __future__ import annotations

import os
from dataclasses import dataclass

from qtctl.config import Config
from qtctl.diagnosis.fleet import FleetUnit, fleet_units
from qtctl.engine.context import CheckContext
from qtctl.engine.findings import Finding, Severity
from qtctl.fix.actions import DaemonReload, WriteDropIn
from qtctl.fix.apply import apply_repairs
from qtctl.fix.journal import FixJournal, FixRecord
from qtctl.fix.policy import never_change
from qtctl.fix.repair import Repair

DROP_IN = "50-qtctl-on-failure.conf"
UNIT_DIR = "/etc/systemd/system"
NOTIFIER = "qtctl-notify@"
CONTENT = (
    "# Written by `qtctl install --on-failure`; `qtctl fix --undo RECORD` takes it back.\n"
    "[Unit]\n"
    "OnFailure=qtctl-notify@%n.service\n"
)


@dataclass(frozen=True)
class DropInPlan:
    """The drop-ins to write, and the units left out with the reason."""

    writes: tuple[WriteDropIn, ...]
    skipped: tuple[tuple[str, str], ...]


def plan_drop_ins(config: Config) -> DropInPlan:
    """One drop-in per fleet unit that may be changed: every fleet unit file on disk (a unit
    systemd has not loaded yet fails just the same once started) and every loaded one."""
    from qtctl.diagnosis.unit_instances import is_template, units_on_disk

    ctx = CheckContext(config)
    try:
        loaded = {u.name: u for u in fleet_units(ctx)}
        on_disk = units_on_disk(config.fleet.units)
        writes, skipped = [], []
        for name in sorted(set(loaded) | {n for n in on_disk if not is_template(n)}):
            why = _skip(name, loaded.get(name), on_disk.get(name, ""), loaded, config)
            if why:
                skipped.append((name, why))
            else:
                writes.append(WriteDropIn(f"{UNIT_DIR}/{name}.d/{DROP_IN}", CONTENT))
    finally:
        ctx.close()
    return DropInPlan(tuple(writes), tuple(skipped))


def apply_drop_ins(config: Config, plan: DropInPlan) -> FixRecord:
    """Write them through fix's journal, then one daemon-reload."""
    request = Finding(
        code="QT000",  # not a problem: the journal's record of an operator's install request
        severity=Severity.INFO,
        subject="qtctl install --on-failure",
        message=f"OnFailure= drop-ins for {len(plan.writes)} fleet units",
    )
    repair = Repair(request, (*plan.writes, DaemonReload()))
    ctx = CheckContext(config)
    try:
        return apply_repairs([repair], ctx.systemd, FixJournal(config.fix.state_dir))
    finally:
        ctx.close()


def _skip(
    name: str,
    unit: FleetUnit | None,
    fragment: str,
    units: dict[str, FleetUnit],
    config: Config,
) -> str:
    if name.startswith(NOTIFIER):
        return "the notifier itself"
    if unit is not None and unit.load_state not in ("loaded", "masked"):
        return f"not loaded ({unit.load_state})"
    masked = (
        unit.file_state.startswith("masked")
        if unit
        else not fragment or os.path.realpath(fragment) == "/dev/null"
    )
    if masked or (unit is not None and unit.load_state == "masked"):
        return "masked"
    return never_change(name, units, config)
