"""QT105: the fleet's inventory drifted from what is expected (missing or inactive units)."""

from __future__ import annotations

from collections.abc import Iterator

from qtctl.diagnosis.fleet import fleet_units
from qtctl.diagnosis.inventory import expected
from qtctl.engine.check import Check
from qtctl.engine.context import CheckContext
from qtctl.engine.findings import CodeDoc, Finding, Severity

INVENTORY_DRIFT = CodeDoc(
    code="QT105",
    title="inventory drift",
    severity="warning",
    meaning="Fewer fleet units are active than expected, or an expected unit is missing or "
    "inactive. The expectation is fleet.expected_units / fleet.expected_count, or the snapshot "
    "that `qtctl doctor --snapshot-inventory` recorded on a healthy fleet.",
    why="A unit that silently stopped or was deleted leaves a hole in the pipeline that no "
    "failed state shows.",
    fix="Start or restore the missing units, or record the new healthy set with "
    "`qtctl doctor --snapshot-inventory` after an intended change.",
)


def run(ctx: CheckContext) -> Iterator[Finding]:
    """Compare the active fleet with the expected inventory (nothing to say without one)."""
    inventory = expected(ctx.config)
    if inventory is None:
        return
    units = {u.name: u for u in fleet_units(ctx)}
    active = sorted(n for n, u in units.items() if u.active_state == "active")
    missing = [n for n in inventory.units if n not in units or units[n].load_state != "loaded"]
    inactive = [
        f"{n} ({units[n].active_state})"
        for n in inventory.units
        if n in units and units[n].load_state == "loaded" and n not in active
    ]
    if not missing and not inactive and len(active) >= inventory.count:
        return
    new = sorted(set(active) - set(inventory.units)) if inventory.units else []
    detail = [f"expected: {inventory.count} active units ({inventory.source})"]
    detail += [f"missing: {n}" for n in missing] + [f"inactive: {n}" for n in inactive]
    detail += [f"not in the inventory: {n}" for n in new]
    yield Finding(
        code=INVENTORY_DRIFT.code,
        severity=Severity.WARNING,
        subject="fleet inventory",
        message=f"{len(active)} of {inventory.count} expected fleet units active; "
        f"{len(missing)} missing, {len(inactive)} inactive",
        cause="inventory-drift",
        detail=tuple(detail),
        fix_hint=INVENTORY_DRIFT.fix,
    )


CHECK = Check(name="unit_inventory", codes=(INVENTORY_DRIFT,), run=run)
