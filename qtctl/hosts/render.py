"""The fleet view as a table (stale hosts first: they are incidents) and as JSON."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rich.markup import escape

from qtctl.engine.wording import duration
from qtctl.hosts.view import FleetView, HostView
from qtctl.output import Output
from qtctl.redaction import DEFAULT as REDACT

SCHEMA = "qtctl.fleet/1"
PROBLEM_WORDS = {"host-clock-ahead": "clock ahead", "hosts-truncated": "not read"}


def as_dict(view: FleetView) -> dict[str, Any]:
    """The `qtctl fleet --format json` document."""
    return {
        "schema": SCHEMA,
        "hosts": [_host_dict(h) for h in view.hosts],
        "incidents": [_stale_incident(h) for h in view.hosts if h.stale or h.problem],
        "shared_streams": [
            {
                "name": s.name,
                "writers": list(s.writers),
                "readers": list(s.readers),
                "groups": list(s.groups),
            }
            for s in view.shared
        ],
    }


def render(out: Output, view: FleetView) -> None:
    """The table: hosts (unhealthy first), then streams that cross hosts."""
    if not view.hosts:
        out.line("no host has published a report yet (qtctl report --redis-publish)")
        return
    hosts = sorted(view.hosts, key=lambda h: (h.healthy, h.host))
    out.table("hosts", ("host", "status", "report age", "errors", "incidents"), map(_row, hosts))
    for host in hosts:
        for incident in host.incidents[:3]:
            folded = int(incident.get("consequences", 0) or 0)
            more = f" (+{folded} consequences)" if folded else ""
            out.line(
                f"{_s(host.host)}: {_s(incident.get('code'))} {_s(incident.get('subject'))}: "
                f"{_s(incident.get('message'))}{more}"
            )
    if view.shared:
        out.table(
            "streams shared between hosts",
            ("stream", "written on", "read on", "groups"),
            (
                (
                    _e(s.name),
                    _e(", ".join(s.writers) or "?"),
                    _e(", ".join(s.readers) or "?"),
                    _e(", ".join(str(g.get("name", "")) for g in s.groups) or "-"),
                )
                for s in view.shared
            ),
        )


def _row(host: HostView) -> tuple[str, ...]:
    problem = PROBLEM_WORDS.get(host.root, "unreadable")
    status = "stale" if host.stale else (problem if host.problem else host.status)
    style = "green" if host.healthy else "red"
    errors = str(host.summary.get("error", "")) if host.summary else ""
    top = host.incidents[0] if host.incidents else None
    incidents = f"{len(host.incidents)}: {top.get('code')} {top.get('subject')}" if top else "0"
    age = duration(host.age_sec)
    if host.stale:
        age += f" (stale after {duration(host.stale_after_sec)})"
    return (_e(host.host), f"[{style}]{_e(status)}[/]", _e(age), _e(errors), _e(incidents))


def _host_dict(host: HostView) -> dict[str, Any]:
    return {
        "host": host.host,
        "status": host.status,
        "age_sec": round(host.age_sec, 1),
        "period_sec": host.period_sec,
        "stale_after_sec": host.stale_after_sec,
        "stale": host.stale,
        "problem": host.problem,
        "summary": dict(host.summary),
        "incidents": [_redacted(i) for i in host.incidents],
    }


def _stale_incident(host: HostView) -> dict[str, Any]:
    """A host that stopped reporting (or wrote a record we cannot read) is an incident itself."""
    if host.problem:
        return {"host": host.host, "root": host.root, "message": REDACT.shown(host.problem)}
    message = (
        f"no report for {duration(host.age_sec)}: more than {duration(host.stale_after_sec)}, "
        f"its timer runs every {duration(host.period_sec)} (is qtctl-report.timer running?)"
    )
    return {"host": host.host, "root": "host-report-stale", "message": message}


def _redacted(incident: Mapping[str, Any]) -> dict[str, Any]:
    """An incident of a record (checked: texts and counts) with its texts redacted."""
    return {k: REDACT.text(v) if isinstance(v, str) else v for k, v in incident.items()}


def _s(value: object) -> str:
    return REDACT.shown(str(value if value is not None else ""))


def _e(text: str) -> str:
    return escape(REDACT.shown(text))
