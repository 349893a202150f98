"""A host record read back from the shared Redis, checked against its schema before the fleet
view believes a word of it: any client of that Redis can write there.

What `record_problem` refuses makes the host `host-record-unreadable` (unhealthy, exit 1): a
status that is not one of the four a report gives, counts that are not non-negative integers,
incidents not of the published shape, a record naming another host than its key."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from qtctl.hosts.stream_use import MAX_STREAMS  # what a writer publishes at most

STATUSES = ("ok", "warning", "critical", "unknown")
COUNTS = ("error", "warning", "info")
INCIDENT_TEXTS = ("code", "severity", "subject", "message")
MAX_COUNT = 10**9
MAX_GROUPS = 100  # consumer groups on one stream
MAX_INCIDENTS = 1_000


def record_problem(host: str, record: Mapping[str, Any]) -> str:
    """Why the record cannot be believed ('' when it can)."""
    named = record.get("host", host)
    if named != host:
        return f"record names another host ({_quoted(named)}) than its key"
    status = record.get("status")
    if status not in STATUSES:
        return f"status {_quoted(status)} is not one of {', '.join(STATUSES)}"
    return (
        _summary_problem(record.get("summary", {}))
        or _incidents_problem(record.get("incidents", []))
        or _streams_problem(record.get("streams", []))
    )


def _streams_problem(streams: object) -> str:
    """More streams or groups than a writer publishes: the record is not one (its size alone
    would make the fleet view take gigabytes)."""
    if not isinstance(streams, list):
        return "streams is not a list"
    if len(streams) > MAX_STREAMS:
        return f"record lists {len(streams)} streams, more than the {MAX_STREAMS} a host publishes"
    for use in streams:
        groups = use.get("groups", []) if isinstance(use, dict) else None
        if not isinstance(groups, list) or len(groups) > MAX_GROUPS:
            return f"a stream entry is not an object with at most {MAX_GROUPS} groups"
    return ""


def _summary_problem(summary: object) -> str:
    if not isinstance(summary, dict):
        return "summary is not an object"
    for key, value in summary.items():
        if not _count(value):
            return f"summary {_quoted(key)} is not a count ({_quoted(value)})"
    return ""


def _incidents_problem(incidents: object) -> str:
    if not isinstance(incidents, list) or len(incidents) > MAX_INCIDENTS:
        return f"incidents is not a list of at most {MAX_INCIDENTS}"
    for index, incident in enumerate(incidents):
        if not isinstance(incident, dict):
            return f"incidents[{index}] is not an object"
        if any(not isinstance(incident.get(k, ""), str) for k in INCIDENT_TEXTS):
            return f"incidents[{index}]: code, severity, subject and message must be texts"
        if not _count(incident.get("consequences", 0)):
            return f"incidents[{index}]: consequences is not a count"
    return ""


def _count(value: object) -> bool:
    """A non-negative integer a report could have counted (no bool, NaN, text or 1e308)."""
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_COUNT


def _quoted(value: object) -> str:
    return repr(value)[:60]
