"""A host record: what one host's `qtctl report --redis-publish` says about itself, small enough
to keep one per host in the shared Redis (counts, incidents, the worst findings, stream use)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from qtctl.diagnosis.stream_names import bare
from qtctl.hosts.stream_use import StreamUse

SCHEMA = "qtctl.host/1"
MAX_TOP = 10  # the worst findings kept per host; the full report stays in report.redis_key


def host_record(
    doc: Mapping[str, Any],
    generated_at: float,
    period_sec: float,
    uses: Sequence[StreamUse],
    prefix: str,
) -> dict[str, Any]:
    """The record of one report document (`qtctl report --format json`'s shape); each stream
    this host's code uses carries the consumer groups the report saw on it."""
    findings = [f for f in doc.get("findings", []) if isinstance(f, dict)]
    groups = {
        bare(str(s.get("name", "")), prefix): s.get("groups", [])
        for s in doc.get("streams") or []
        if isinstance(s, dict)
    }
    return {
        "schema": SCHEMA,
        "host": doc.get("host", ""),
        "generated_at": generated_at,
        "period_sec": period_sec,
        "status": doc.get("status", "unknown"),
        "summary": doc.get("summary", {}),
        "incidents": _incidents(doc, findings),
        "top": [_brief(f) for f in _worst(findings)[:MAX_TOP]],
        "streams": [{**u.as_dict(), "groups": groups.get(u.name, [])} for u in uses],
    }


def encode(record: Mapping[str, Any]) -> str:
    """The record as stored."""
    return json.dumps(record, separators=(",", ":"), sort_keys=True)


def _incidents(doc: Mapping[str, Any], findings: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each incident as its root finding plus how many consequences hang under it. A report
    without incidents (an older qtctl) gives one per error finding: each is its own root."""
    incidents = doc.get("incidents")
    if not isinstance(incidents, list):
        return [{**_brief(f), "consequences": 0} for f in findings if f.get("severity") == "error"]
    by_id = {f.get("id"): f for f in findings if f.get("id")}
    out = []
    for incident in incidents:
        if not isinstance(incident, dict):
            continue
        root = incident.get("root")
        finding = by_id.get(root) if isinstance(root, str) else root
        chain: list[Any] = incident["chain"] if isinstance(incident.get("chain"), list) else []
        brief = _brief(finding) if isinstance(finding, dict) else _brief({})
        out.append({**brief, "consequences": len([i for i in chain if i != root])})
    return out


def _worst(findings: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rank = {"error": 0, "warning": 1, "info": 2}
    return sorted(findings, key=lambda f: rank.get(str(f.get("severity")), 3))


def _brief(finding: Mapping[str, Any]) -> dict[str, Any]:
    keys = ("code", "severity", "subject", "message")
    return {k: str(finding.get(k, "")) for k in keys}
