"""Roll-up: findings that share a cause across units, and incidents of the same shape, counted
once, so a fleet of 150 units reads on one screen. Grouping reads typed fields only (code,
severity, the first cause code, which names the worst problem of a finding)."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from qtctl.engine.findings import Finding, Severity
from qtctl.engine.incidents import Incident

T = TypeVar("T")


@dataclass(frozen=True)
class Group:
    """Findings with the same code, severity and first cause code."""

    code: str
    severity: Severity
    cause: str
    findings: tuple[Finding, ...]

    @property
    def subjects(self) -> list[str]:
        """The subjects, in report order, each once."""
        return list(dict.fromkeys(f.subject for f in self.findings))


def primary_cause(cause: str) -> str:
    """The first of a comma list of cause codes (the worst problem, by the checks' order)."""
    return cause.split(",", 1)[0]


def rollup(findings: Sequence[Finding]) -> list[Group]:
    """Groups of findings by shared cause, worst first, then the largest, then report order."""
    groups = _bucket(findings, lambda f: (f.code, f.severity, primary_cause(f.cause)))
    made = [Group(f[0].code, f[0].severity, primary_cause(f[0].cause), tuple(f)) for f in groups]
    return sorted(made, key=lambda g: (-g.severity, -len(g.findings)))


def incident_shape(incident: Incident) -> tuple[str, ...]:
    """What an incident looks like without its subjects: root code and cause, then the
    distinct code and cause of its consequences."""
    root = incident.root
    rest = sorted({f"{f.code} {primary_cause(f.cause)}" for f in incident.consequences})
    return (f"{root.code} {primary_cause(root.cause)}", *rest)


def group_incidents(found: Sequence[Incident]) -> list[list[Incident]]:
    """Incidents of the same shape together: the worst root first, then the most findings
    involved (60 units failing on one cause come before one unit failing on another)."""
    groups = _bucket(found, incident_shape)
    return sorted(groups, key=lambda g: (-g[0].root.severity, -sum(len(i.members) for i in g)))


def _bucket(items: Sequence[T], key: Callable[[T], Hashable]) -> list[list[T]]:
    buckets: dict[Hashable, list[T]] = {}
    for item in items:
        buckets.setdefault(key(item), []).append(item)
    return list(buckets.values())
