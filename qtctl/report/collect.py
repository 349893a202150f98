"""Run doctor once and gather, from the same run, the inventory the report's metrics need."""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from qtctl.adapters.redis_client import StreamInfo
from qtctl.config import Config
from qtctl.doctor import run_doctor
from qtctl.engine.context import CheckContext
from qtctl.engine.report import Report
from qtctl.errors import AdapterUnavailable

if TYPE_CHECKING:
    from qtctl.diagnosis.fleet import FleetUnit


@dataclass(frozen=True)
class UnitState:
    """One fleet unit as `systemctl list-units` shows it."""

    name: str
    active_state: str
    sub_state: str
    type: str = ""  # a service's Type= (simple, notify, ...), as node_exporter labels it
    load_state: str = "loaded"


@dataclass(frozen=True)
class HealthReport:
    """Doctor's report plus the fleet's units and streams, stamped with host and time."""

    report: Report
    units: tuple[UnitState, ...] | None  # None: systemd was not reachable
    streams: tuple[StreamInfo, ...] | None  # None: Redis was not reachable
    host: str
    generated_at: float

    @property
    def units_by_state(self) -> dict[str, int]:
        """How many fleet units are active, failed, inactive, ..."""
        counts: dict[str, int] = {}
        for unit in self.units or ():
            counts[unit.active_state] = counts.get(unit.active_state, 0) + 1
        return counts


def collect(config: Config) -> HealthReport:
    """One doctor run; units and streams come from what its checks already read."""
    ctx = CheckContext(config)
    try:
        report = run_doctor(config, ctx=ctx)
        units = _units(ctx)
        streams = ctx.memo("stream_infos", lambda: None)
    finally:
        ctx.close()
    return HealthReport(
        report=report,
        units=units,
        streams=None if streams is None else tuple(s for s in streams.values() if not s.error),
        host=socket.gethostname(),
        generated_at=time.time(),
    )


def _units(ctx: CheckContext) -> tuple[UnitState, ...] | None:
    from qtctl.diagnosis.fleet import fleet_units

    try:
        units = fleet_units(ctx)
    except AdapterUnavailable:
        return None  # doctor already reported QT100
    return tuple(
        UnitState(u.name, u.active_state, u.sub_state, _type(u), u.load_state) for u in units
    )


def _type(unit: FleetUnit) -> str:
    """Type= of a loaded service ("" for other units), read with the properties checks read."""
    if not (unit.name.endswith(".service") and unit.load_state == "loaded"):
        return ""
    try:
        return str(unit.props.get("Type", ""))
    except AdapterUnavailable:
        return ""
