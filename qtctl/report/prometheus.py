"""The health report as a node_exporter textfile: `qtctl_*` gauges named as exporters name them.

Conventions (docs/monitoring.md lists every series): units carry node_exporter's labels
(`qtctl_systemd_unit_state{name,state,type}`, one series per state, 1 for the current one), so a
query joins them with `node_systemd_unit_state` on `name`; stream metrics are redis_exporter's
names under `qtctl_` (`qtctl_stream_group_messages_pending{stream,group}`, ...). Every family is a
gauge, so none ends in `_total`. A value Redis or systemd could not give is never a sentinel: its
sample is left out and a `*_known` series says 0. Label values are escaped as the exposition
format asks (backslash, double quote, newline), after the terminal escaping of `shown`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from qtctl.adapters.redis_client import StreamInfo
from qtctl.escaping import shown
from qtctl.report.collect import HealthReport
from qtctl.stream_ids import id_ms

STATUS_VALUE = {"ok": 0, "warning": 1, "critical": 2, "unknown": 3}
UNIT_STATES = ("active", "activating", "deactivating", "inactive", "failed")  # node_exporter's
Sample = tuple[dict[str, str], float]
Family = tuple[str, str, list[Sample]]


def to_prometheus(health: HealthReport) -> str:
    """The whole textfile: HELP and TYPE once per family, then its samples."""
    families = [*_report_families(health), *_unit_families(health), *_stream_families(health)]
    families += _group_families(health.streams or ())
    out: list[str] = []
    for name, help_text, samples in families:
        out.append(f"# HELP {name} {help_text}")
        out.append(f"# TYPE {name} gauge")
        out += [f"{name}{_labels(labels)} {_number(value)}" for labels, value in samples]
    return "\n".join(out) + "\n"


def _report_families(health: HealthReport) -> list[Family]:
    report = health.report
    counts = report.summary()
    by_code = Counter((f.code, str(f.severity)) for f in report.findings)
    return [
        (
            "qtctl_health_status",
            "Fleet health: 0 ok, 1 warning, 2 critical, 3 unknown.",
            [({}, STATUS_VALUE[report.status])],
        ),
        (
            "qtctl_findings",
            "Findings of the last report by check code and severity (only codes found).",
            [({"code": c, "severity": s}, n) for (c, s), n in sorted(by_code.items())],
        ),
        (
            "qtctl_findings_by_severity",
            "Findings of the last report by severity (every severity, 0 included).",
            [({"severity": s}, counts[s]) for s in ("error", "warning", "info")],
        ),
        (
            "qtctl_checks_skipped",
            "Checks skipped because a backend was unreachable.",
            [({}, counts["checks_skipped"])],
        ),
        ("qtctl_report_duration_seconds", "How long the checks took.", [({}, report.duration)]),
        (
            "qtctl_report_last_success_timestamp_seconds",
            "When this report was written (Unix time); alert when it stops moving.",
            [({}, round(health.generated_at, 3))],
        ),
    ]


def _unit_families(health: HealthReport) -> list[Family]:
    # Loaded units only, as node_exporter: a referenced unit with no file is a finding, not a state
    units = [u for u in health.units or () if u.load_state == "loaded"]
    return [
        (
            "qtctl_systemd_units_known",
            "1 if systemd answered and the unit series below are complete, else 0.",
            [({}, health.units is not None)],
        ),
        (
            "qtctl_systemd_unit_state",
            "Fleet unit state as node_exporter's node_systemd_unit_state: 1 for the current one.",
            [
                ({"name": u.name, "state": state, "type": u.type}, u.active_state == state)
                for u in units
                for state in UNIT_STATES
            ],
        ),
    ]


def _stream_families(health: HealthReport) -> list[Family]:
    streams = health.streams or ()
    return [
        (
            "qtctl_streams_known",
            "1 if Redis answered and the stream series below are complete, else 0.",
            [({}, health.streams is not None)],
        ),
        ("qtctl_stream_length", "Entries in the stream (XLEN).", _per_stream(streams)),
        (
            "qtctl_stream_groups",
            "Consumer groups of the stream.",
            [({"stream": s.name}, len(s.groups)) for s in streams],
        ),
        (
            "qtctl_stream_last_entry_age_seconds",
            "Age of the newest entry by its ID's time (absent when the stream is empty).",
            [({"stream": s.name}, age) for s, age in _ages(streams, health.generated_at)],
        ),
        (
            "qtctl_stream_last_entry_age_known",
            "1 if the stream has an entry to take the age of, else 0.",
            [({"stream": s.name}, bool(id_ms(s.last_id))) for s in streams],
        ),
    ]


def _group_families(streams: tuple[StreamInfo, ...]) -> list[Family]:
    groups = [(s.name, g) for s in streams for g in s.groups]
    consumers = [(s.name, group, c) for s in streams for group, c in s.consumers]
    return [
        (
            "qtctl_stream_group_consumers",
            "Consumers of the group.",
            [({"stream": n, "group": g.name}, g.consumers) for n, g in groups],
        ),
        (
            "qtctl_stream_group_messages_pending",
            "Entries delivered to the group and not acknowledged (its PEL).",
            [({"stream": n, "group": g.name}, g.pending) for n, g in groups],
        ),
        (
            "qtctl_stream_group_lag",
            "Entries not yet delivered to the group (absent when Redis cannot compute it).",
            [({"stream": n, "group": g.name}, g.lag) for n, g in groups if g.lag is not None],
        ),
        (
            "qtctl_stream_group_lag_known",
            "1 if Redis could compute the group's lag, else 0.",
            [({"stream": n, "group": g.name}, g.lag is not None) for n, g in groups],
        ),
        (
            "qtctl_stream_group_entries_read",
            "The group's logical read counter (absent when Redis does not know it).",
            [
                ({"stream": n, "group": g.name}, g.entries_read)
                for n, g in groups
                if g.entries_read is not None
            ],
        ),
        (
            "qtctl_stream_group_consumer_messages_pending",
            "Entries pending for this consumer of the group.",
            [({"stream": n, "group": g, "consumer": c.name}, c.pending) for n, g, c in consumers],
        ),
        (
            "qtctl_stream_group_consumer_idle_seconds",
            "Seconds since the consumer last read or acknowledged.",
            [
                ({"stream": n, "group": g, "consumer": c.name}, c.idle_ms / 1000)
                for n, g, c in consumers
            ],
        ),
    ]


def _per_stream(streams: Iterable[StreamInfo]) -> list[Sample]:
    return [({"stream": s.name}, s.length) for s in streams]


def _ages(streams: Iterable[StreamInfo], now: float) -> list[tuple[StreamInfo, float]]:
    """Seconds from the newest entry's ID time to the report; never below 0 (clock skew)."""
    dated = [(s, id_ms(s.last_id)) for s in streams if s.last_id]
    return [(s, max(0.0, round(now - ms / 1000, 3))) for s, ms in dated if ms]


def _labels(labels: dict[str, str]) -> str:
    if not labels:
        return ""
    body = ",".join(f'{k}="{_escape(str(v))}"' for k, v in labels.items())
    return "{" + body + "}"


def _escape(value: str) -> str:
    r"""A label value as the exposition format escapes it (`\\`, `\"`, `\n`), so a name with a
    quote, backslash or newline reads back as it is; any other control character or byte that is
    not UTF-8 is shown escaped (`shown`: `\x1b` as four characters), never raw."""
    lines = (shown(part).replace("\\", "\\\\").replace('"', '\\"') for part in value.split("\n"))
    return "\\n".join(lines)


def _number(value: float) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if float(value).is_integer():
        return str(int(value))
    return repr(round(float(value), 6))
