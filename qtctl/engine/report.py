"""The result of a doctor run, its status and its stable JSON shape."""

from __future__ import annotations

import functools
from dataclasses import dataclass

from qtctl.engine.findings import Finding, Severity
from qtctl.engine.incidents import Incident, finding_ids, incidents

# /2: every finding gains `refs` and `id`, the document `incidents`, each after /1's keys, which
# stay as they were.
SCHEMA = "qtctl.report/2"


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

    @functools.cached_property
    def incidents(self) -> tuple[Incident, ...]:
        """The causal chains among the findings, worst root first (`engine.incidents`)."""
        return tuple(incidents(self.findings))

    @functools.cached_property
    def ids(self) -> tuple[str, ...]:
        """Each finding's stable id, in finding order."""
        return tuple(finding_ids(self.findings))

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
        """The versioned JSON document `--format json` prints (`report_document`)."""
        return report_document(self)


def report_document(report: Report) -> dict[str, object]:
    """The one builder of the JSON report (schema qtctl.report/2), for every format that
    prints it: findings with their ids, the incidents naming those ids, what was skipped."""
    ids = report.ids
    return {
        "schema": SCHEMA,
        "status": report.status,
        "summary": report.summary(),
        "findings": [{**f.as_dict(), "id": i} for i, f in zip(ids, report.findings, strict=True)],
        "skipped": [
            {"check": s.check, "backend": s.backend, "reason": s.reason} for s in report.skipped
        ],
        "duration_sec": round(report.duration, 3),
        "incidents": [incident_dict(inc, ids) for inc in report.incidents],
    }


def incident_dict(incident: Incident, ids: tuple[str, ...]) -> dict[str, object]:
    """`{id, root, chain, fix, links}`: finding ids, the root's fix, and each link's rule."""
    root = ids[incident.members[0]]
    return {
        "id": f"INC-{root}",
        "root": root,
        "chain": [ids[i] for i in incident.members],
        "fix": incident.fix,
        "fixable": incident.root.fixable,
        "links": [
            {"from": ids[link.cause], "to": ids[link.effect], "rule": link.rule.name}
            for link in incident.links
        ],
    }
