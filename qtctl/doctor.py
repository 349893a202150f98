"""`qtctl doctor` as a library call: build the context, run the registry, return a report."""

from __future__ import annotations

from collections.abc import Sequence

from qtctl.config import Config
from qtctl.engine.check import Check
from qtctl.engine.context import CheckContext
from qtctl.engine.report import Report
from qtctl.engine.runner import Selection, run_checks


def run_doctor(
    config: Config, checks: Sequence[Check] | None = None, ctx: CheckContext | None = None
) -> Report:
    """Run every selected check against the live host; a given context stays open."""
    if checks is None:
        from qtctl.checks import REGISTRY

        checks = REGISTRY
    own = ctx is None
    context = CheckContext(config) if ctx is None else ctx
    selection = Selection(config.doctor.select, config.doctor.ignore)
    try:
        return run_checks(checks, context, selection, config.doctor.check_timeout)
    finally:
        if own:
            context.close()


def snapshot_inventory(config: Config) -> tuple[str, int]:
    """Record the currently active fleet units as the expected inventory (QT105)."""
    from qtctl.diagnosis.fleet import fleet_units
    from qtctl.diagnosis.inventory import record

    ctx = CheckContext(config)
    try:
        active = [u.name for u in fleet_units(ctx) if u.active_state == "active"]
    finally:
        ctx.close()
    return str(record(config, active)), len(active)
