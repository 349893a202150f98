"""The exit-code contract, decided in one place."""

from __future__ import annotations

from qtctl.engine.findings import Severity
from qtctl.engine.report import Report

OK = 0
FINDINGS = 1
USAGE = 2
INTERNAL = 3


def exit_code(report: Report, fail_on: str) -> int:
    """0 healthy, 1 when a finding is at or above `fail_on` (error|warning|info|never)."""
    if fail_on == "never" or report.worst is None:
        return OK
    return FINDINGS if report.worst >= Severity.parse(fail_on) else OK
