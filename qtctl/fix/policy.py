"""Safety rules: what fix must never do to a live trading fleet, and the rule that held it."""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable
from dataclasses import dataclass

from qtctl.config import Config
from qtctl.diagnosis.fleet import FleetUnit


@dataclass(frozen=True)
class FixOptions:
    """What the operator allowed on the command line."""

    apply: bool = False
    unsafe: bool = False
    only: tuple[str, ...] = ()


def never_restart(unit: FleetUnit, config: Config) -> str:
    """Why fix must never restart `unit`, whatever the options, or ''."""
    if unit.file_state.startswith("masked"):
        return "unit is masked: fix never unmasks or starts a masked unit"
    if unit.file_state in ("disabled", "indirect") or not unit.file_state:
        return f"unit is {unit.file_state or 'not enabled'}: fix never starts a disabled unit"
    if any(fnmatch.fnmatchcase(unit.name, p) for p in config.fleet.protected):
        return "protected unit (fleet.protected): restart it by hand if you are sure"
    return ""


def restart_permission(unit: FleetUnit, options: FixOptions, live: str) -> str:
    """What the operator still has to say before `unit` may be restarted, or ''."""
    if not options.unsafe:
        return "restarting a service needs --unsafe"
    if live and unit.name not in options.only:
        return f"live mode: name the unit to restart it (--only {unit.name}); {live}"
    return ""


def live_mode(config: Config, units: Iterable[FleetUnit]) -> str:
    """Why the fleet counts as trading live ('' when it does not)."""
    if config.fleet.live_mode:
        return "fleet.live_mode = true"
    var, values = config.fleet.live_mode_var, {v.lower() for v in config.fleet.live_mode_values}
    for unit in units:
        for assignment in _environment(unit):
            name, _, value = assignment.partition("=")
            if name == var and value.strip().strip("'\"").lower() in values:
                return f"{var}={value} in the environment of {unit.name}"
    return ""


def _environment(unit: FleetUnit) -> list[str]:
    assignments = [str(a) for a in unit.props.get("Environment") or []]
    for entry in unit.props.get("EnvironmentFiles") or []:
        path = entry[0] if isinstance(entry, list | tuple) else str(entry)
        try:
            with open(path, encoding="utf-8", errors="replace") as handle:
                assignments += [line.strip() for line in handle if "=" in line]
        except OSError:
            continue
    return [a.removeprefix("export ") for a in assignments]
