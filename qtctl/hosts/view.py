"""`qtctl fleet`: every host's latest record judged in one place.

A host is stale when its record is older than `stale_periods` of its own report period (the
period it published, else `report.period_sec`): its timer or its qtctl is dead, which is an
incident of its own. A stream is shared when the code that writes or reads it runs on more
than one host (a producer on host A, its consumer group on host B)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from qtctl.hosts.store import StoredHost

MAX_PERIOD_SEC = 7 * 86_400.0
CLOCK_SLACK_SEC = 300.0  # a record dated further ahead than this: its clock (or it) is wrong
CLOCK_AHEAD = "host-clock-ahead"


@dataclass(frozen=True)
class HostView:
    """One host as the fleet view shows it."""

    host: str
    age_sec: float
    period_sec: float
    stale_after_sec: float
    stale: bool
    status: str
    summary: Mapping[str, Any]
    incidents: tuple[Mapping[str, Any], ...]
    problem: str = ""  # the record could not be read, or its date cannot be true
    root: str = "host-record-unreadable"  # the incident a problem is

    @property
    def healthy(self) -> bool:
        """Fresh, readable, dated no later than now, and ok or warning (unknown is not ok)."""
        return not (self.stale or self.problem or self.status not in ("ok", "warning"))


@dataclass(frozen=True)
class SharedStream:
    """A stream written on some hosts and read on others."""

    name: str
    writers: tuple[str, ...]
    readers: tuple[str, ...]
    groups: tuple[Mapping[str, Any], ...]


@dataclass(frozen=True)
class FleetView:
    """All hosts, newest report first, and the streams that cross hosts."""

    hosts: tuple[HostView, ...]
    shared: tuple[SharedStream, ...]

    @property
    def unhealthy(self) -> tuple[HostView, ...]:
        """Hosts that are stale, unreadable or critical."""
        return tuple(h for h in self.hosts if not h.healthy)


def build_view(
    stored: Sequence[StoredHost], now: float, default_period: float, stale_periods: float
) -> FleetView:
    """Judge each stored host at time `now`."""
    hosts = tuple(_host(s, now, default_period, stale_periods) for s in stored)
    return FleetView(hosts, _shared([s for s in stored if s.record is not None]))


def _host(stored: StoredHost, now: float, default_period: float, periods: float) -> HostView:
    record = stored.record or {}
    period = _number(record.get("period_sec"), default_period, 1.0, MAX_PERIOD_SEC)
    generated = _number(record.get("generated_at"), stored.indexed_at, 0.0, math.inf)
    generated = min(generated, stored.indexed_at) if stored.record else generated  # the older
    ahead = max(generated, stored.indexed_at) - now
    problem, root = stored.problem, stored.root
    if not problem and ahead > CLOCK_SLACK_SEC:
        problem = f"dated {ahead:.0f} s after this host's clock: its age cannot be judged"
        root = CLOCK_AHEAD
    age = max(now - generated, 0.0)
    incidents = record.get("incidents")
    summary = record.get("summary")
    return HostView(
        host=stored.host,
        age_sec=age,
        period_sec=period,
        stale_after_sec=periods * period,
        stale=age > periods * period,
        status=str(record.get("status", "unknown")),
        summary=summary if isinstance(summary, dict) else {},
        incidents=tuple(i for i in incidents if isinstance(i, dict))
        if isinstance(incidents, list)
        else (),
        problem=problem,
        root=root,
    )


def _shared(stored: Sequence[StoredHost]) -> tuple[SharedStream, ...]:
    writers: dict[str, set[str]] = {}
    readers: dict[str, set[str]] = {}
    groups: dict[str, dict[str, Mapping[str, Any]]] = {}
    for host in stored:
        for use in _list(host.record, "streams"):
            name = str(use.get("name", ""))
            if use.get("writes") is True:
                writers.setdefault(name, set()).add(host.host)
            if use.get("reads") is True:
                readers.setdefault(name, set()).add(host.host)
            for group in use.get("groups", []) if isinstance(use.get("groups"), list) else []:
                if isinstance(group, dict):
                    groups.setdefault(name, {})[str(group.get("name", ""))] = group
    shared = []
    for name in sorted(set(writers) | set(readers)):
        hosts_w, hosts_r = writers.get(name, set()), readers.get(name, set())
        if len(hosts_w | hosts_r) >= 2:
            found = tuple(groups.get(name, {}).values())
            shared.append(SharedStream(name, tuple(sorted(hosts_w)), tuple(sorted(hosts_r)), found))
    return tuple(shared)


def _list(record: Mapping[str, Any] | None, key: str) -> list[Mapping[str, Any]]:
    value = (record or {}).get(key)
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _number(value: object, default: float, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return default
    return min(max(float(value), low), high)
