"""`qtctl install --on-failure`: an `OnFailure=` drop-in for each fleet unit, written through
fix's journal (backed up, journaled, undone by `qtctl fix --undo ID`).

Skipped, with the reason: masked units (nothing runs them), protected units (qtctl changes
nothing of a protected unit), units that are not loaded, and qtctl-notify@ itself (a failing
notifier must not notify about itself)."""

from __future__ import annotations

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
    """One drop-in per fleet unit that may be changed."""
    ctx = CheckContext(config)
    try:
        units = {u.name: u for u in fleet_units(ctx)}
        writes, skipped = [], []
        for name, unit in sorted(units.items()):
            why = _skip(name, unit, units, config)
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


def _skip(name: str, unit: FleetUnit, units: dict[str, FleetUnit], config: Config) -> str:
    if name.startswith(NOTIFIER):
        return "the notifier itself"
    if unit.load_state != "loaded":
        return f"not loaded ({unit.load_state})"
    if unit.file_state.startswith("masked"):
        return "masked"
    return never_change(name, units, config)
