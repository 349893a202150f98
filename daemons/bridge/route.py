"""Bridge routes from config, and the checks a route must pass before the bridge starts."""

from __future__ import annotations

from typing import Any

from qtctl.bridge_routes import Route
from qtctl.bridge_routes import parse_routes as routes_from_config
from qtctl.config import Config
from qtctl.daemon.runtime import FatalDaemonError
from qtctl.diagnosis.stream_names import near_misses
from qtctl.errors import ConfigError

__all__ = ["Route", "parse_routes", "validate"]


def parse_routes(config: Config) -> list[Route]:
    """The configured routes; a malformed one stops the bridge (systemd does not retry it)."""
    try:
        return routes_from_config(config)
    except ConfigError as exc:
        raise FatalDaemonError(str(exc)) from None


def validate(client: Any, route: Route, config: Config) -> list[str]:
    """Refuse a destination that is a near-miss of an existing stream or that no group reads,
    unless the config acknowledges it (bridge.allow_near_miss / bridge.allow_no_readers)."""
    settings, prefix = config.bridge, config.streams.prefix
    existing = [
        k.decode() if isinstance(k, bytes) else k
        for k in client.scan_iter(match=f"{prefix}*", count=1000, _type="stream")
    ]
    notes = []
    for dest in route.destinations:
        bare = dest.removeprefix(prefix)
        skip = {*route.destinations, route.source}
        others = [k for k in near_misses(bare, existing, prefix) if k not in skip]
        if others and not _acknowledged(dest, settings.allow_near_miss, prefix):
            raise FatalDaemonError(
                f"destination {dest} is a near-miss of existing stream(s) {', '.join(others)}: "
                "readers may be on the other name (qtctl doctor --select QT405 shows who uses "
                f"which); add {bare!r} to bridge.allow_near_miss to bridge anyway, or fan out to "
                "both names during a rename (`source->old|new`)"
            )
        groups = client.xinfo_groups(dest) if client.type(dest) in ("stream", b"stream") else []
        if not groups:
            if not _acknowledged(dest, settings.allow_no_readers, prefix):
                raise FatalDaemonError(
                    f"no consumer group reads destination {dest}: entries would pile up "
                    f"unread; add {bare!r} to bridge.allow_no_readers if its readers use plain "
                    "XREAD"
                )
            notes.append(f"{dest}: no consumer group (acknowledged in bridge.allow_no_readers)")
    return notes


def _acknowledged(dest: str, names: tuple[str, ...], prefix: str) -> bool:
    return dest in names or dest.removeprefix(prefix) in names
