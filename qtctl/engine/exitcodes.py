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


def fix_exit_code(
    *,
    applied: bool,
    planned: int,
    changed: bool,
    still_failing: bool,
    exit_zero: bool = False,
    exit_non_zero_on_fix: bool = False,
) -> int:
    """`qtctl fix`: a preview exits 1 when its plan holds any repair (one that would change
    something, or a held one: its finding remains), 0 when there is nothing to do; after
    --apply, 1 when a repaired finding is still there, or (--exit-non-zero-on-fix) when
    anything changed. --exit-zero makes every one of these 0."""
    if exit_zero:
        return OK
    if not applied:
        return FINDINGS if planned else OK
    if still_failing or (exit_non_zero_on_fix and changed):
        return FINDINGS
    return OK
