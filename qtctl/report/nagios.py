"""The health report as a monitoring-plugins check: status line, long output, perfdata, 0-3.

Follows the Monitoring Plugins Development Guidelines: the first line is `QTCTL STATUS - text |
perfdata`, lines 2..n are the long output (one finding per line, never a `|` in them), perfdata is
`'label'=value[UOM];warn;crit;min;max`, and the exit code is 0 OK, 1 WARNING, 2 CRITICAL,
3 UNKNOWN. Thresholds use the plugins' range grammar (`Range`): the error count is tested against
`--critical` (default `0`: CRITICAL at one error, as qtctl says), the warning count against
`--warning` (default `0`); the perfdata carries exactly the ranges that were tested.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from qtctl.engine.findings import Finding
from qtctl.errors import UsageError
from qtctl.escaping import shown
from qtctl.report.collect import HealthReport

EXIT = {"OK": 0, "WARNING": 1, "CRITICAL": 2, "UNKNOWN": 3}
SHOWN_IN_SUMMARY = 3
_NUMBER = re.compile(r"|[-+]?([0-9]+\.?[0-9]*|\.[0-9]+)")


@dataclass(frozen=True)
class Range:
    """A threshold range: `10` is 0..10, `10:` 10..inf, `~:10` -inf..10, `10:20`, and `@` in
    front alerts inside the range instead of outside it (both ends inclusive)."""

    text: str
    start: float
    end: float
    inside: bool

    @classmethod
    def parse(cls, text: str, option: str) -> Range:
        """The range, or a UsageError naming the option (a plugin exits UNKNOWN on bad usage)."""
        spec = text.strip()
        inside = spec.startswith("@")
        body = spec[1:] if inside else spec
        low, _, high = body.rpartition(":") if ":" in body else ("", "", body)
        if not body or not all(_NUMBER.fullmatch(part) for part in (low, high) if part != "~"):
            raise UsageError(f"{option} {text!r} is not a threshold range (10, 10:, ~:10, @10:20)")
        if high == "~":
            raise UsageError(f"{option} {text!r}: `~` stands for minus infinity, at the start only")
        start = -math.inf if low == "~" else float(low or 0)
        end = float(high) if high else math.inf
        if start > end:
            raise UsageError(f"{option} {text!r}: the start is above the end")
        return cls(spec, start, end, inside)

    def alerts(self, value: float) -> bool:
        """Whether `value` raises the alert this range stands for."""
        within = self.start <= value <= self.end
        return within if self.inside else not within


@dataclass(frozen=True)
class Thresholds:
    """`--warning` on the warning count, `--critical` on the error count."""

    warning: Range
    critical: Range

    @classmethod
    def parse(cls, warning: str = "0", critical: str = "0") -> Thresholds:
        """Both ranges, checked before anything runs."""
        return cls(Range.parse(warning, "--warning"), Range.parse(critical, "--critical"))


def to_nagios(health: HealthReport, thresholds: Thresholds) -> tuple[str, int]:
    """The plugin output (status line, long output) and its exit code."""
    report = health.report
    state = _state(health, thresholds)
    lines = [f"QTCTL {state} - {_summary(health)} | {_perfdata(health, thresholds)}"]
    lines += [_clean(f"{f.severity} {f.code} {f.subject}: {f.message}") for f in _ranked(health)]
    lines += [_clean(f"not checked: {s.check} ({s.reason})") for s in report.skipped]
    return "\n".join(lines) + "\n", EXIT[state]


def _state(health: HealthReport, thresholds: Thresholds) -> str:
    counts = health.report.summary()
    if thresholds.critical.alerts(counts["error"]):
        return "CRITICAL"
    if thresholds.warning.alerts(counts["warning"]):
        return "WARNING"
    if not health.report.findings and health.report.skipped:
        return "UNKNOWN"  # nothing found because nothing could be checked
    return "OK"


def _summary(health: HealthReport) -> str:
    report = health.report
    counts = report.summary()
    ranked = _ranked(health)
    if not ranked:
        if report.skipped:
            names = ", ".join(s.check for s in report.skipped)
            return _clean(f"not checked: {names} ({report.skipped[0].reason})")
        return f"no problems ({counts['checks_run']} checks)"
    head = "; ".join(f"{f.code} {f.subject}: {f.message}" for f in ranked[:SHOWN_IN_SUMMARY])
    more = len(ranked) - SHOWN_IN_SUMMARY
    tally = f"{counts['error']} error(s), {counts['warning']} warning(s)"
    return _clean(f"{tally}: {head}" + (f" (+{more} more)" if more > 0 else ""))


def _ranked(health: HealthReport) -> list[Finding]:
    return sorted(health.report.findings, key=lambda f: -f.severity)


def _perfdata(health: HealthReport, thresholds: Thresholds) -> str:
    counts = health.report.summary()
    failed = health.units_by_state.get("failed", 0)
    items = [
        _perf("errors", counts["error"], crit=thresholds.critical.text),
        _perf("warnings", counts["warning"], warn=thresholds.warning.text),
        _perf("info", counts["info"]),
        _perf("checks_skipped", counts["checks_skipped"]),
    ]
    if health.units is not None:
        items.append(_perf("units_failed", failed))
    items.append(_perf("duration", round(health.report.duration, 3), uom="s"))
    return " ".join(items)


def _perf(label: str, value: float, uom: str = "", warn: str = "", crit: str = "") -> str:
    """`'label'=value[UOM];warn;crit;min`: every value here is a count or time, so min is 0."""
    number = str(value) if isinstance(value, int) else f"{value:.3f}".rstrip("0").rstrip(".")
    return f"'{label}'={number}{uom};{warn};{crit};0"


def _clean(text: str) -> str:
    """One line of plugin output: escaped (no raw control byte), no `|` (it starts perfdata)."""
    return shown(text).replace("|", "/").replace("\n", " ")
