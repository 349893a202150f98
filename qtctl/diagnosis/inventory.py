"""The expected fleet inventory: from config, or a snapshot of a healthy fleet."""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

from qtctl.config import Config
from qtctl.errors import ConfigError


@dataclass(frozen=True)
class Inventory:
    """The units that should be active and where that expectation comes from."""

    units: tuple[str, ...]
    count: int
    source: str


def expected(config: Config) -> Inventory | None:
    """The configured inventory, else the recorded snapshot, else None."""
    fleet = config.fleet
    if fleet.expected_units or fleet.expected_count:
        count = fleet.expected_count or len(fleet.expected_units)
        return Inventory(fleet.expected_units, count, "config fleet.expected_units")
    path = Path(fleet.inventory_file)
    if not path.is_file():
        return None
    try:
        doc = json.loads(path.read_text())
        units = tuple(str(u) for u in doc["units"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"inventory file {path} is unreadable or damaged: {exc}") from None
    return Inventory(units, len(units), f"snapshot {path} ({doc.get('recorded_at', '?')})")


def record(config: Config, active_units: list[str]) -> Path:
    """Write the snapshot atomically; returns its path."""
    path = Path(config.fleet.inventory_file)
    path.parent.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps({"recorded_at": stamp, "units": sorted(active_units)}, indent=2))
    os.replace(tmp, path)
    return path
