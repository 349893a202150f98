"""`qtctl run bridge`: the main loop around the atomic copy script, with adaptive batches."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

from qtctl.adapters.redis_client import RedisAdapter, text
from qtctl.config import Config
from qtctl.daemon.runtime import FatalDaemonError
from qtctl.daemons.bridge.copy_script import COPY_BATCH, COPY_BATCH_SHA
from qtctl.daemons.bridge.route import Route, parse_routes, validate

log = logging.getLogger("qtctl.bridge")
CAPPED_BY_COUNT = 1  # the copy script's `capped`: 0 source drained, 1 batch full, 2 bytes spent


@dataclass
class RouteState:
    """What the bridge knows about one route between steps."""

    route: Route
    batch: int
    position: str = ""
    lag: int = 0
    lag_ms: int = 0
    filtered: int = 0
    bridged: int = 0
    dead: int = 0
    waiting_for_source: bool = False
    batches: list[int] = field(default_factory=list)


class Bridge:
    """Copies every route's new source entries, in order and effectively once."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.routes = parse_routes(config)
        self.adapter: RedisAdapter | None = None
        self.states = [RouteState(r, config.bridge.batch_min) for r in self.routes]

    def setup(self) -> None:
        """Connect, validate every route, register the copy script."""
        self.close()
        block = self.config.bridge.block_ms / 1000
        adapter = RedisAdapter.connect(self.config.redis, decode=False, block_sec=block)
        self.adapter = adapter
        for route in self.routes:
            for note in validate(adapter.client, route, self.config):
                log.info("route %s: %s", route.label, note)
        adapter.client.script_load(COPY_BATCH)

    def step(self) -> bool:
        """One batch per route; when every route is idle, block briefly for new entries."""
        busy = False
        for state in self.states:
            busy |= self._copy(state)
        if not busy:
            self._wait_for_entries()
        return busy

    def _copy(self, state: RouteState) -> bool:
        settings, route, options = self.config.bridge, state.route, state.route.options
        keys = [route.source, route.state_key, route.dead_letter, *route.destinations]
        now_ms = int(time.time() * 1000)
        oldest = max(0, now_ms - int(options.max_age_sec * 1000))
        minid = f"{oldest}-0" if options.max_age_sec else ""
        argv = [
            state.batch,
            settings.start_id,
            now_ms,
            settings.max_entry_bytes,
            options.maxlen or settings.maxlen,
            ",".join((*settings.require_fields, *options.require_fields)),
            ",".join(f"{a}={b}" for a, b in options.rename),
            ",".join(options.keep_fields),
            ",".join(f"{a}={b}" for a, b in options.match),
            minid,
            settings.batch_max_bytes,
            state.position,
        ]
        reply = self._evalsha(keys, argv)
        kind = reply[0]
        if kind == "no-source":
            if not state.waiting_for_source:
                log.warning("route %s: source %s does not exist yet", route.label, route.source)
            state.waiting_for_source = True
            return False
        if kind == "source-type":
            raise FatalDaemonError(f"source {route.source} is a {reply[1]}, not a stream")
        if kind == "destination-type":
            raise FatalDaemonError(f"destination {reply[1]} is a {reply[2]}, not a stream")
        if kind == "state-type":
            raise FatalDaemonError(
                f"the route's state key {route.state_key} is a {reply[1]}, not a hash"
            )
        if kind == "dead-letter-type":
            raise FatalDaemonError(
                f"the dead-letter key {route.dead_letter} is a {reply[1]}, not a stream"
            )
        if kind == "foreign-writer":
            raise FatalDaemonError(
                f"another writer added {reply[1]} entries up to {reply[2]}, beyond this "
                f"bridge's position {reply[3]}: stop that writer (is an old bridge still "
                "running?); the bridge copies source IDs and cannot go below them"
            )
        state.waiting_for_source = False
        previous = state.position
        copied, dead, state.position = int(reply[1]), int(reply[2]), reply[3]
        state.lag, state.lag_ms, filtered = int(reply[4]), int(reply[5]), int(reply[6])
        state.filtered += filtered
        capped = int(reply[7])
        for event in reply[8:]:
            _log_event(route, event, previous)
        if dead:
            log.error(
                "route %s: %d poison entr%s moved to %s",
                route.label,
                dead,
                "y" if dead == 1 else "ies",
                route.dead_letter,
            )
        state.bridged += copied
        state.dead += dead
        moved = copied + dead + filtered
        state.batches.append(moved)
        del state.batches[:-32]
        # Backlog: double the batch up to batch_max (not when the byte budget cut it short);
        # live traffic: back to small batches.
        if capped == CAPPED_BY_COUNT:
            state.batch = min(settings.batch_max, state.batch * 2)
        elif not capped and moved < state.batch // 4:
            state.batch = max(settings.batch_min, state.batch // 2)
        return bool(capped)

    def _evalsha(self, keys: list[str], argv: list[Any]) -> list[str]:
        """One copy call, loaded again if Redis lost the script (a restart since setup)."""
        import redis

        assert self.adapter is not None
        client = self.adapter.client
        try:
            reply = client.evalsha(COPY_BATCH_SHA, len(keys), *keys, *argv)
        except redis.exceptions.NoScriptError:
            client.script_load(COPY_BATCH)
            reply = client.evalsha(COPY_BATCH_SHA, len(keys), *keys, *argv)
        return [text(x) for x in reply]

    def _wait_for_entries(self) -> None:
        assert self.adapter is not None
        streams = {s.route.source: s.position for s in self.states if s.position}
        if not streams:
            time.sleep(self.config.bridge.block_ms / 1000)
            return
        self.adapter.client.xread(streams, count=1, block=self.config.bridge.block_ms)

    def status(self) -> str:
        """`bridged N, lag L, batch B` per route, for STATUS= and the logs."""
        parts = []
        for s in self.states:
            avg = sum(s.batches) / len(s.batches) if s.batches else 0
            parts.append(
                f"{s.route.source.rsplit(':', 1)[-1]}: bridged {s.bridged}, lag {s.lag}"
                f" ({s.lag_ms / 1000:.1f} s), batch {avg:.0f}"
                + (f", dead-lettered {s.dead}" if s.dead else "")
                + (f", filtered {s.filtered}" if s.filtered else "")
            )
        return "; ".join(parts)

    def reload(self, config: Config) -> None:
        """New config: routes and limits; reconnects on the next setup-worthy error."""
        self.config = config
        routes = parse_routes(config)
        if routes != self.routes:
            self.routes = routes
            self.states = [RouteState(r, config.bridge.batch_min) for r in routes]
            if self.adapter:
                for route in routes:
                    validate(self.adapter.client, route, config)

    def close(self) -> None:
        """Drop the connection pool."""
        if self.adapter is not None:
            self.adapter.close()
            self.adapter = None


def _log_event(route: Route, event: str, previous: str) -> None:
    """One event of the copy script, in words; `previous`: the position this process last saw."""
    kind, _, rest = event.partition(":")
    if kind == "new-route" and previous:
        log.error(
            "route %s: the bridge's state vanished from Redis (its position was %s): Redis "
            "restarted without persistence, or the key %s was deleted; starting again after %s "
            "(bridge.start_id)",
            route.label,
            previous,
            route.state_key,
            rest,
        )
    elif kind == "new-route":
        log.info("route %s: new, starting after %s (bridge.start_id)", route.label, rest)
    elif kind == "gap":
        lost, start, first = rest.split(":", 2)
        log.error(
            "route %s: source trimmed past the bridge: %s entries after %s and before %s were "
            "never bridged (lost)",
            route.label,
            lost,
            start,
            first,
        )
    elif kind == "rewind":
        previous, position = rest.split(":", 1)
        log.error(
            "route %s: the bridge's position went back from %s to %s: Redis restarted from "
            "older data (an RDB snapshot, or an AOF not yet fsynced) and lost its latest writes. "
            "What producers wrote after %s is lost with them; readers may already have seen "
            "destination entries up to %s that Redis no longer holds",
            route.label,
            previous,
            position,
            position,
            previous,
        )
    elif kind == "destination-missing":
        log.error("route %s: destination %s was deleted; re-creating it", route.label, rest)
    elif kind == "source-behind":
        log.error(
            "route %s: the source's last ID %s is behind the bridge's position: Redis lost "
            "data (restart without persistence?)",
            route.label,
            rest,
        )


def create(config: Config) -> Bridge:
    """The daemon factory `qtctl run bridge` uses."""
    return Bridge(config)
