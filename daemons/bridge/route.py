"""Bridge routes from config, and the checks a route must pass before the bridge starts."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from qtctl.config import Config
from qtctl.daemon.runtime import FatalDaemonError
from qtctl.diagnosis.stream_names import near_misses
from qtctl.route_options import RouteOptions, route_options


@dataclass(frozen=True)
class Route:
    """One source copied into one or more destinations (several during a rename)."""

    source: str
    destinations: tuple[str, ...]
    state_key: str
    dead_letter: str
    options: RouteOptions = field(default_factory=RouteOptions)

    @property
    def label(self) -> str:
        """`source -> destination[, destination]` for logs."""
        return f"{self.source} -> {', '.join(self.destinations)}"


def parse_routes(config: Config) -> list[Route]:
    """`source->dest[|dest]` entries of bridge.routes, with the fleet prefix added."""
    prefix, settings = config.streams.prefix, config.bridge
    routes = []
    for text in settings.routes:
        source, arrow, targets = text.partition("->")
        names = [t.strip() for t in targets.split("|") if t.strip()]
        if not arrow or not source.strip() or not names:
            raise FatalDaemonError(f"bridge.routes: {text!r} is not `source->destination`")
        src = _key(prefix, source.strip())
        dests = tuple(_key(prefix, n) for n in names)
        if src in dests:
            raise FatalDaemonError(f"bridge.routes: {text!r} copies a stream into itself")
        table = settings.per_route.get(source.strip()) or settings.per_route.get(src)
        routes.append(
            Route(
                src,
                dests,
                f"{settings.state_prefix}{src}",
                f"{src}{settings.dead_letter_suffix}",
                route_options(table),
            )
        )
    return routes


def _key(prefix: str, name: str) -> str:
    return name if name.startswith(prefix) or ":" in name else prefix + name


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
