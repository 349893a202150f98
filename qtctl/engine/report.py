"""The result of a doctor run, its status and its stable JSON shape."""

from __future__ import annotations

from dataclasses import dataclass

from qtctl.engine.findings import Finding, Severity

SCHEMA = "qtctl.report/1"


@dataclass(frozen=True)
class Skipped:
    """A check that did not run because a backend it needs is unreachable."""

    check: str
    reason: str
    backend: str = ""


@dataclass(frozen=True)
class Report:
    """Findings of one run, plus what was skipped and how long it took."""

    findings: tuple[Finding, ...]
    skipped: tuple[Skipped, ...] = ()
    checks_run: tuple[str, ...] = ()
    duration: float = 0.0

    @property
    def worst(self) -> Severity | None:
        """The highest severity found, or None."""
        return max((f.severity for f in self.findings), default=None)

    @property
    def status(self) -> str:
        """ok | warning | critical | unknown, as monitoring systems read it."""
        if self.worst == Severity.ERROR:
            return "critical"
        if self.worst == Severity.WARNING:
            return "warning"
        return "unknown" if self.skipped else "ok"

    def summary(self) -> dict[str, int]:
        """Counts by severity plus checks run and skipped."""
        counts = {str(s): 0 for s in (Severity.ERROR, Severity.WARNING, Severity.INFO)}
        for finding in self.findings:
            counts[str(finding.severity)] += 1
        counts["checks_run"] = len(self.checks_run)
        counts["checks_skipped"] = len(self.skipped)
        return counts

    def as_dict(self) -> dict[str, object]:
        """The versioned JSON document `--format json` prints."""
        return {
            "schema": SCHEMA,
            "status": self.status,
            "summary": self.summary(),
            "findings": [f.as_dict() for f in self.findings],
            "skipped": [
                {"check": s.check, "backend": s.backend, "reason": s.reason} for s in self.skipped
            ],
            "duration_sec": round(self.duration, 3),
        }
