"""Every check family qtctl runs, in the order doctor reports them.

Installed as `qtctl.checks`; the registry is explicit so that a test can assert every module is
registered, every code unique and documented.
"""

from __future__ import annotations

from qtctl.checks import (
    backends,
    daemon_health,
    env_files,
    heartbeats,
    host_resources,
    line_endings,
    python_imports,
    redis_restart,
    redis_server,
    redis_streams,
    risk_proposals,
    service_endpoints,
    stale_code,
    sys_path_hacks,
    systemd_units,
    trade_records,
    unit_drift,
    unit_files,
    unit_inventory,
    unit_resources,
)
from qtctl.engine.check import Check

REGISTRY: tuple[Check, ...] = (
    backends.SYSTEMD_CHECK,
    systemd_units.CHECK,
    stale_code.CHECK,
    unit_files.CHECK,
    unit_inventory.CHECK,
    unit_drift.CHECK,
    python_imports.CHECK,
    line_endings.CHECK,
    sys_path_hacks.CHECK,
    backends.REDIS_CHECK,
    redis_server.CHECK,
    redis_streams.CHECK,
    risk_proposals.CHECK,
    daemon_health.CHECK,
    trade_records.CHECK,
    host_resources.CHECK,
    service_endpoints.CHECK,
    env_files.CHECK,
    heartbeats.CHECK,
    redis_restart.CHECK,
    unit_resources.CHECK,
)
