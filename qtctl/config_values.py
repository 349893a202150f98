"""Raw config values: the TOML file read flat, each value coerced to its type and checked."""

from __future__ import annotations

import re
import tomllib
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from qtctl.errors import ConfigError
from qtctl.redaction import mask_url, validate_redis_url
from qtctl.route_options import parse_route_options
from qtctl.stream_limits import parse_overrides


def read_file(path: Path, required: bool) -> dict[str, Any]:
    """The config file's `section.key` values; a missing file is empty unless `required`."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        if required:
            raise ConfigError(f"config file {path} does not exist") from None
        return {}
    except PermissionError:
        raise ConfigError(f"config file {path} is not readable (permission denied)") from None
    except IsADirectoryError:
        raise ConfigError(f"config file {path} is a directory") from None
    except UnicodeDecodeError:
        raise ConfigError(f"config file {path} is not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
    return _flatten(data, path)


def _flatten(data: Mapping[str, Any], path: Path) -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for section, body in data.items():
        if not isinstance(body, dict):
            raise ConfigError(f"expected a [{section}] table in {path}", key=section)
        for key, value in body.items():
            flat[f"{section}.{key}"] = value
    return flat


def coerce(path: str, value: Any, hint: Any, meta: Mapping[str, Any]) -> Any:
    """`value` as type `hint`; a table field is parsed by what its metadata says it holds."""
    try:
        if hint is bool:
            return _to_bool(value)
        if hint in (int, float):
            if isinstance(value, bool):
                raise ValueError
            return hint(value)
        if hint is str:
            if not isinstance(value, str):
                raise ValueError
            return value
        if typing.get_origin(hint) is tuple:
            return _to_tuple(value)
        if typing.get_origin(hint) is Mapping and meta.get("per_route"):
            return parse_route_options(path, value)
        if typing.get_origin(hint) is Mapping and meta.get("per_stream"):
            return parse_overrides(path, value)
    except (TypeError, ValueError):
        pass
    else:
        raise ConfigError(f"unsupported type {hint}", key=path)
    kind = getattr(hint, "__name__", str(hint)).replace("tuple", "list of strings")
    raise ConfigError(f"expected {kind}, got {value!r}", key=path)


def _to_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ValueError(value)


def _to_tuple(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise ValueError(value)


def validate(path: str, value: Any, meta: Mapping[str, Any]) -> Any:
    """`value` if it keeps within the field's `choices`, `min`, `max` and format metadata."""
    if "choices" in meta and value not in meta["choices"]:
        raise ConfigError(f"must be one of {', '.join(meta['choices'])}, got {value!r}", key=path)
    if "min" in meta and value < meta["min"]:
        raise ConfigError(f"must be at least {meta['min']}, got {value!r}", key=path)
    if "max" in meta and value > meta["max"]:
        raise ConfigError(f"must be at most {meta['max']}, got {value!r}", key=path)
    if meta.get("key_seconds"):
        for item in value:
            key, sep, seconds = item.rpartition("=")
            try:
                ok = bool(sep and key.strip()) and float(seconds) > 0
            except ValueError:
                ok = False
            if not ok:
                raise ConfigError(f"expected KEY=MAX_AGE_SEC, got {item!r}", key=path)
    if meta.get("file_mode") and not re.fullmatch(r"0?[0-7]{3}", value):
        raise ConfigError(f"expected an octal file mode such as 0644, got {value!r}", key=path)
    if meta.get("redis_url"):
        problem = validate_redis_url(value)
        if problem:
            raise ConfigError(f"{problem} (got {mask_url(value)})", key=path)
    return value
