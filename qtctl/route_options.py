"""Per-route options of the bridge: `[bridge.per_route."SOURCE"]` tables, validated at load."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from qtctl.errors import ConfigError

LISTS = ("rename", "keep_fields", "require_fields", "match")
NUMBERS = ("maxlen", "max_age_sec")


@dataclass(frozen=True)
class RouteOptions:
    """How one route transforms, filters and retains what it copies."""

    maxlen: int = 0  # destination MAXLEN ~ (0: bridge.maxlen)
    max_age_sec: float = 0.0  # destination MINID ~ by age (0: none)
    rename: tuple[tuple[str, str], ...] = ()  # source field -> destination field
    keep_fields: tuple[str, ...] = ()  # only these fields (after nothing: all)
    require_fields: tuple[str, ...] = ()  # missing one: dead letter
    match: tuple[tuple[str, str], ...] = ()  # copy only entries with these field values


def parse_route_options(path: str, value: Any) -> dict[str, dict[str, Any]]:
    """Validate the tables; values stay plain (lists of strings, numbers)."""
    if not isinstance(value, Mapping):
        raise ConfigError('expected tables such as [bridge.per_route."execution.result"]', key=path)
    parsed: dict[str, dict[str, Any]] = {}
    for source, table in value.items():
        where = f'{path}."{source}"'
        if not isinstance(table, Mapping):
            raise ConfigError("expected a table of route options", key=where)
        parsed[str(source)] = {k: _checked(f"{where}.{k}", k, v) for k, v in table.items()}
    return parsed


def _checked(path: str, key: str, value: Any) -> Any:
    if key in NUMBERS:
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise ConfigError(f"expected a number >= 0, got {value!r}", key=path)
        return value
    if key not in LISTS:
        raise ConfigError(f"unknown route option; known: {', '.join(NUMBERS + LISTS)}", key=path)
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ConfigError(f"expected a list of strings, got {value!r}", key=path)
    if key in ("rename", "match"):
        bad = [v for v in value if "=" not in v or v.startswith("=")]
        if bad:
            raise ConfigError(f"expected 'field=value' items, got {bad[0]!r}", key=path)
    return value


def route_options(table: Mapping[str, Any] | None) -> RouteOptions:
    """The RouteOptions of one validated table."""
    table = table or {}

    def pairs(name: str) -> tuple[tuple[str, str], ...]:
        return tuple((v.split("=", 1)[0], v.split("=", 1)[1]) for v in table.get(name, ()))

    return RouteOptions(
        maxlen=int(table.get("maxlen", 0)),
        max_age_sec=float(table.get("max_age_sec", 0)),
        rename=pairs("rename"),
        keep_fields=tuple(table.get("keep_fields", ())),
        require_fields=tuple(table.get("require_fields", ())),
        match=pairs("match"),
    )
