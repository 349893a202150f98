"""The health report as JSON, Markdown, a Prometheus textfile, or one Nagios status line."""

from __future__ import annotations

import json
import time
from collections import Counter

from qtctl.engine.findings import Finding, Severity
from qtctl.escaping import md_code, md_text, shown
from qtctl.report.collect import HealthReport

SCHEMA = "qtctl.health/1"
NAGIOS_CODES = {"ok": 0, "warning": 1, "critical": 2, "unknown": 3}
STATUS_VALUE = {"ok": 0, "warning": 1, "critical": 2, "unknown": 3}


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


def to_prometheus(health: HealthReport) -> str:
    """node_exporter textfile collector format: `qtctl_*` gauges, HELP and TYPE once each."""
    report = health.report
    metrics: list[tuple[str, str, list[tuple[dict[str, str], float]]]] = []
    status = report.status
    metrics.append(
        (
            "qtctl_health_status",
            "Fleet health: 0 ok, 1 warning, 2 critical, 3 unknown.",
            [({}, STATUS_VALUE[status])],
        )
    )
    by_code = Counter((f.code, str(f.severity)) for f in report.findings)
    metrics.append(
        (
            "qtctl_findings",
            "Findings of the last report by check code and severity.",
            [({"code": c, "severity": s}, n) for (c, s), n in sorted(by_code.items())],
        )
    )
    counts = report.summary()
    metrics.append(
        (
            "qtctl_findings_total",
            "Findings of the last report by severity.",
            [({"severity": s}, counts[s]) for s in ("error", "warning", "info")],
        )
    )
    metrics.append(
        (
            "qtctl_checks_skipped",
            "Checks skipped because a backend was unreachable.",
            [({}, counts["checks_skipped"])],
        )
    )
    metrics.append(
        (
            "qtctl_unit_active",
            "1 if the fleet unit is active, else 0; its state in the labels.",
            [
                (
                    {"unit": u.name, "state": u.active_state, "sub": u.sub_state},
                    u.active_state == "active",
                )
                for u in health.units or ()
            ],
        )
    )
    metrics.append(
        (
            "qtctl_stream_length",
            "Entries in the stream (XLEN).",
            [({"stream": s.name}, s.length) for s in health.streams or ()],
        )
    )
    groups = [(s.name, g) for s in health.streams or () for g in s.groups]
    metrics.append(
        (
            "qtctl_stream_group_lag",
            "Entries not yet delivered to the consumer group (-1: Redis cannot compute it).",
            [({"stream": n, "group": g.name}, -1 if g.lag is None else g.lag) for n, g in groups],
        )
    )
    metrics.append(
        (
            "qtctl_stream_group_pending",
            "Entries delivered to the group and not acknowledged.",
            [({"stream": n, "group": g.name}, g.pending) for n, g in groups],
        )
    )
    metrics.append(
        (
            "qtctl_report_duration_seconds",
            "How long the checks took.",
            [({}, round(report.duration, 6))],
        )
    )
    metrics.append(
        (
            "qtctl_report_last_success_timestamp_seconds",
            "When this report was written (Unix time).",
            [({}, round(health.generated_at, 3))],
        )
    )
    out = []
    for name, help_text, samples in metrics:
        out.append(f"# HELP {name} {help_text}")
        out.append(f"# TYPE {name} gauge")
        out += [f"{name}{_labels(labels)} {_number(value)}" for labels, value in samples]
    return "\n".join(out) + "\n"


def _labels(labels: dict[str, str]) -> str:
    if not labels:
        return ""
    body = ",".join(f'{k}="{_escape(str(v))}"' for k, v in labels.items())
    return "{" + body + "}"


def _escape(value: str) -> str:
    """A label value: escaped for the terminal first (no raw control or non-UTF-8 byte), then
    for the exposition format."""
    return shown(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(value: float) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if float(value).is_integer():
        return str(int(value))
    return repr(float(value))


def to_nagios(health: HealthReport) -> tuple[str, int]:
    """One monitoring-plugins status line with perfdata, and its exit code (0/1/2/3)."""
    report = health.report
    counts = report.summary()
    status = report.status
    worst = sorted(report.findings, key=lambda f: -f.severity)[:3]
    text = "; ".join(f"{f.code} {f.subject}: {f.message}" for f in worst)  # escaped findings
    if not text:
        skipped = report.skipped
        text = (
            "no problems"
            if not skipped
            else f"not checked: {', '.join(s.check for s in skipped)} ({skipped[0].reason})"
        )
    text = shown(text).replace("|", "/")  # `|` would start the perfdata
    if len(report.findings) > len(worst):
        text += f" (+{len(report.findings) - len(worst)} more)"
    failed = health.units_by_state.get("failed", 0)
    perf = (
        f"errors={counts['error']};;1;0 warnings={counts['warning']};1;;0 "
        f"info={counts['info']};;;0 "
        f"units_failed={failed};;1;0 skipped={counts['checks_skipped']};;;0 "
        f"duration={report.duration:.3f}s;;;0"
    )
    line = f"QTCTL {status.upper()} - {text} | {perf}"
    return line + "\n", NAGIOS_CODES[status]


def _iso(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))
