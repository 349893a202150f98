"""Bridge routes as config states them: `source->destination[|destination...]`, prefix added.

Shared by the bridge daemon and by fix (which must not migrate entries past the bridge's
position), so it lives outside both.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from qtctl.config import Config
from qtctl.errors import ConfigError
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
            raise ConfigError(f"{text!r} is not `source->destination`", key="bridge.routes")
        src = _key(prefix, source.strip())
        dests = tuple(_key(prefix, n) for n in names)
        if src in dests:
            raise ConfigError(f"{text!r} copies a stream into itself", key="bridge.routes")
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
