"""A doctor report cut down to one unit: what is about it, and what its incident ties to it."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

from qtctl.engine.findings import Finding
from qtctl.engine.report import Report


def about_unit(report: Report, names: Iterable[str]) -> Report:
    """Findings whose subject is one of the unit's names, or that a finding about it names as
    related (the CRLF script or the import error behind its failure)."""
    wanted = set(names)
    direct = [f for f in report.findings if f.subject in wanted]
    tied = {r for f in direct for r in f.related}
    kept = [f for f in report.findings if f in direct or f"{f.code} {f.subject}" in tied]
    return dataclasses.replace(report, findings=tuple(kept))


def root_of(report: Report) -> Finding | None:
    """The finding to lead with: the worst one, code order breaking ties (QT2xx code causes
    before the QT1xx unit state they explain)."""
    if not report.findings:
        return None
    return max(report.findings, key=lambda f: (f.severity, _cause_rank(f.code)))


def _cause_rank(code: str) -> int:
    order = ("QT2", "QT3", "QT4", "QT1")  # code and files, Redis, then the unit's own state
    return next((len(order) - i for i, p in enumerate(order) if code.startswith(p)), 0)
