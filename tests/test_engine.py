"""The check engine: selection, isolation of crashing and slow checks, report and exit codes."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from qtctl.config import load_config
from qtctl.engine.check import Check, is_selected
from qtctl.engine.context import CheckContext
from qtctl.engine.exitcodes import exit_code
from qtctl.engine.findings import CodeDoc, Finding, Severity
from qtctl.engine.report import Report
from qtctl.engine.runner import Selection, run_checks
from qtctl.errors import AdapterUnavailable


def _doc(code: str) -> CodeDoc:
    return CodeDoc(code, "t", "warning", "m", "w", "f")


def _check(name: str, code: str, fn: object) -> Check:
    return Check(name=name, codes=(_doc(code),), run=fn)  # type: ignore[arg-type]


def _finding(code: str, severity: Severity = Severity.WARNING) -> Finding:
    return Finding(code, severity, "subject", "message")


def _ctx() -> CheckContext:
    return CheckContext(load_config(None, env={}))


@pytest.mark.parametrize(
    ("code", "select", "ignore", "expected"),
    [
        ("QT401", (), (), True),
        ("QT401", ("QT4",), (), True),
        ("QT101", ("QT4",), (), False),
        ("QT402", ("QT4",), ("QT402",), False),
        ("QT401", ("QT4",), ("QT402",), True),
        ("QT402", ("QT402",), ("QT4",), True),
        ("QT402", ("QT4",), ("QT4",), False),
        ("QT101", (), ("QT1",), False),
        ("qt101", ("QT1",), (), True),
    ],
)
def test_selection_by_prefix(
    code: str, select: tuple[str, ...], ignore: tuple[str, ...], expected: bool
) -> None:
    assert is_selected(code, select, ignore) is expected


def test_a_crashing_check_becomes_qt000_and_the_run_goes_on() -> None:
    def boom(ctx: CheckContext) -> Iterator[Finding]:
        yield _finding("QT801")
        raise KeyError("oops")

    def fine(ctx: CheckContext) -> Iterator[Finding]:
        yield _finding("QT802")

    checks = (_check("boom", "QT801", boom), _check("fine", "QT802", fine))
    report = run_checks(checks, _ctx(), Selection(), timeout=5)
    assert [f.code for f in report.findings] == ["QT000", "QT802"]
    crash = report.findings[0]
    assert crash.subject == "check boom"
    assert crash.message == "crashed: KeyError: 'oops'"
    assert crash.severity is Severity.ERROR
    assert any("KeyError" in line for line in crash.detail)


def test_a_slow_check_is_cut_off_at_its_budget() -> None:
    def slow(ctx: CheckContext) -> Iterator[Finding]:
        time.sleep(3)
        yield _finding("QT801")

    started = time.monotonic()
    report = run_checks((_check("slow", "QT801", slow),), _ctx(), Selection(), timeout=0.2)
    assert time.monotonic() - started < 2
    assert [f.code for f in report.findings] == ["QT000"]
    assert "did not finish within 0.2 s" in report.findings[0].message


def test_unreachable_backend_skips_the_check() -> None:
    def needs_redis(ctx: CheckContext) -> Iterator[Finding]:
        raise AdapterUnavailable("redis", "connection refused")
        yield  # pragma: no cover

    report = run_checks((_check("streams", "QT401", needs_redis),), _ctx(), Selection(), 5)
    assert report.findings == ()
    assert report.skipped[0].check == "streams"
    assert report.skipped[0].reason == "connection refused"
    assert report.status == "unknown"


def test_selection_drops_unselected_checks_and_findings() -> None:
    calls = []

    def two(ctx: CheckContext) -> Iterator[Finding]:
        calls.append("two")
        yield _finding("QT401")
        yield _finding("QT402")

    check = Check("two", (_doc("QT401"), _doc("QT402")), two)
    report = run_checks((check,), _ctx(), Selection(ignore=("QT402",)), 5)
    assert [f.code for f in report.findings] == ["QT401"]
    report = run_checks((check,), _ctx(), Selection(select=("QT1",)), 5)
    assert calls == ["two"] and report.checks_run == ()


@pytest.mark.parametrize(
    ("severities", "fail_on", "code", "status"),
    [
        ((), "error", 0, "ok"),
        ((Severity.WARNING,), "error", 0, "warning"),
        ((Severity.WARNING,), "warning", 1, "warning"),
        ((Severity.INFO,), "info", 1, "ok"),
        ((Severity.ERROR, Severity.INFO), "error", 1, "critical"),
        ((Severity.ERROR,), "never", 0, "critical"),
    ],
)
def test_exit_code_and_status(
    severities: tuple[Severity, ...], fail_on: str, code: int, status: str
) -> None:
    report = Report(tuple(_finding("QT601", s) for s in severities))
    assert exit_code(report, fail_on) == code
    assert report.status == status


def test_a_crash_is_reported_even_when_its_code_is_not_selected() -> None:
    def boom(ctx: CheckContext) -> Iterator[Finding]:
        raise AttributeError("no such method")
        yield  # pragma: no cover

    check = _check("units", "QT101", boom)
    report = run_checks((check,), _ctx(), Selection(select=("QT1",)), 5)
    assert [f.code for f in report.findings] == ["QT000"]
    report = run_checks((check,), _ctx(), Selection(ignore=("QT000",)), 5)
    assert report.findings == ()


def test_findings_about_one_subject_are_linked() -> None:
    def units(ctx: CheckContext) -> Iterator[Finding]:
        yield Finding("QT101", Severity.ERROR, "quantum-x.service", "failed", cause="bad-user")
        yield Finding("QT101", Severity.ERROR, "quantum-y.service", "failed")

    def files(ctx: CheckContext) -> Iterator[Finding]:
        yield Finding("QT104", Severity.ERROR, "quantum-x.service", "User=x does not exist")

    checks = (_check("units", "QT101", units), _check("files", "QT104", files))
    report = run_checks(checks, _ctx(), Selection(), 5)
    related = {(f.code, f.subject): f.related for f in report.findings}
    assert related == {
        ("QT101", "quantum-x.service"): ("QT104 quantum-x.service",),
        ("QT101", "quantum-y.service"): (),
        ("QT104", "quantum-x.service"): ("QT101 quantum-x.service",),
    }
