"""Per-stream thresholds: `[streams.per_stream."NAME"]` tables over the `[streams]` defaults."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from qtctl.errors import ConfigError


@dataclass(frozen=True)
class StreamLimits:
    """The thresholds one stream is judged by, and what is known about who uses it."""

    length_warn: int
    length_error: int
    memory_error_mb: float
    stale_after_sec: float
    lag_warn: int
    lag_error: int
    pending_idle_sec: float
    dead_consumer_sec: float
    retention_maxlen: int
    retention_max_age_sec: float
    live: bool = False
    producer: str = ""  # the systemd unit that writes it
    groups: tuple[str, ...] = ()  # consumer groups that must exist


NUMBERS = {
    f.name: f.type
    for f in dataclasses.fields(StreamLimits)
    if f.name not in ("live", "producer", "groups")
}
KEYS = (*NUMBERS, "live", "producer", "groups")


def parse_overrides(path: str, value: Any) -> dict[str, dict[str, Any]]:
    """Validate `per_stream` tables: stream name -> {key: value}, with typed values."""
    if not isinstance(value, Mapping):
        raise ConfigError('expected tables such as [streams.per_stream."trade.intent"]', key=path)
    parsed: dict[str, dict[str, Any]] = {}
    for stream, table in value.items():
        where = f'{path}."{stream}"'
        if not isinstance(table, Mapping):
            raise ConfigError("expected a table of thresholds", key=where)
        parsed[str(stream)] = {k: _typed(f"{where}.{k}", k, v) for k, v in table.items()}
    return parsed


def _typed(path: str, key: str, value: Any) -> Any:
    if key not in KEYS:
        raise ConfigError(f"unknown per-stream key; known: {', '.join(KEYS)}", key=path)
    if key == "live":
        if not isinstance(value, bool):
            raise ConfigError(f"expected true or false, got {value!r}", key=path)
        return value
    if key == "producer":
        if not isinstance(value, str):
            raise ConfigError(f"expected a unit name, got {value!r}", key=path)
        return value
    if key == "groups":
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"expected a list of group names, got {value!r}", key=path)
        return tuple(value)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"expected a number, got {value!r}", key=path)
    if value <= 0:
        raise ConfigError(f"must be positive, got {value!r}", key=path)
    kind = int if NUMBERS[key] in (int, "int") else float
    if kind is int and value != int(value):
        raise ConfigError(f"expected a whole number, got {value!r}", key=path)
    return kind(value)


def limits_for(settings: Any, key: str) -> StreamLimits:
    """The effective limits of stream `key` (full key or bare name)."""
    name = key[len(settings.prefix) :] if key.startswith(settings.prefix) else key
    base = {k: getattr(settings, k) for k in NUMBERS}
    base["live"] = name in settings.live
    override = settings.per_stream.get(name) or settings.per_stream.get(key) or {}
    return StreamLimits(**{**base, **override})
