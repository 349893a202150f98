"""The health report as JSON or Markdown (prometheus.py and nagios.py write the other two)."""

from __future__ import annotations

import json
import time

from qtctl.engine.findings import Finding, Severity
from qtctl.escaping import md_code, md_text, shown
from qtctl.report.collect import HealthReport

SCHEMA = "qtctl.health/1"


def to_json(health: HealthReport) -> str:
    """Doctor's JSON document plus the inventory, host and generation time."""
    doc = health.report.as_dict()
    doc["schema"] = SCHEMA
    doc["host"] = shown(health.host)
    doc["generated_at"] = _iso(health.generated_at)
    doc["units"] = (
        None
        if health.units is None
        else {"total": len(health.units), "by_state": health.units_by_state}
    )
    doc["streams"] = (
        None
        if health.streams is None
        else [
            {
                "name": shown(s.name),
                "length": s.length,
                "groups": [
                    {"name": shown(g.name), "lag": g.lag, "pending": g.pending} for g in s.groups
                ],
            }
            for s in health.streams
        ]
    )
    return json.dumps(doc, indent=2) + "\n"


def to_markdown(health: HealthReport) -> str:
    """An incident summary: status first, each problem with cause and fix, then what is fine."""
    report = health.report
    counts = report.summary()
    lines = [
        f"# Fleet health on {md_text(health.host)}: **{report.status.upper()}**",
        "",
        f"{_iso(health.generated_at)} · {counts['error']} error(s), {counts['warning']} "
        f"warning(s), {counts['info']} info · {counts['checks_run']} checks in "
        f"{report.duration:.2f} s",
        "",
    ]
    problems = [f for f in report.findings if f.severity >= Severity.WARNING]
    if problems:
        lines += ["## Problems", ""]
        for n, f in enumerate(sorted(problems, key=lambda f: -f.severity), 1):
            lines += _problem(n, f)
    else:
        lines += ["No problems found.", ""]
    if report.skipped:
        lines += ["## Not checked", ""]
        lines += [f"- {md_code(s.check)}: {md_text(s.reason)}" for s in report.skipped]
        lines.append("")
    notes = [f for f in report.findings if f.severity < Severity.WARNING]
    if notes:
        lines += ["## Notes", ""]
        lines += [f"- {f.code} {md_code(f.subject)}: {md_text(f.message)}" for f in notes]
        lines.append("")
    lines += ["## Inventory", ""]
    if health.units is None:
        lines.append("- fleet units: not read (systemd unreachable)")
    else:
        by_state = ", ".join(f"{n} {md_text(s)}" for s, n in sorted(health.units_by_state.items()))
        lines.append(f"- fleet units: {len(health.units)}" + (f" ({by_state})" if by_state else ""))
    if health.streams is None:
        lines.append("- streams: not read (Redis unreachable or not checked)")
    else:
        lagging = sum(1 for s in health.streams for g in s.groups if g.lag)
        groups = sum(len(s.groups) for s in health.streams)
        entries = sum(s.length for s in health.streams)
        lines.append(
            f"- streams: {len(health.streams)}, {entries} entries; "
            f"consumer groups: {groups} ({lagging} with lag)"
        )
    return "\n".join(lines) + "\n"


def _problem(n: int, f: Finding) -> list[str]:
    heading = f"### {n}. {f.severity.name.lower()} {f.code}: {md_code(f.subject)}"
    lines = [heading, "", md_text(f.message), ""]
    if f.cause:
        lines.append(f"- cause: {md_text(f.cause)}")
    if f.fixable:
        lines.append(f"- fix: `qtctl fix --select {f.code}` (preview), then add `--apply`")
    if f.fix_hint:
        lines.append(f"- by hand: {md_text(f.fix_hint)}")
    return [*lines, ""]


def _iso(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))
