"""Run checks in isolation: a crash becomes QT000, a slow check is cut off at its budget."""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
import traceback
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from qtctl.engine.check import Check, is_selected
from qtctl.engine.context import CheckContext
from qtctl.engine.findings import CodeDoc, Finding, Severity
from qtctl.engine.linking import link_by_subject
from qtctl.engine.report import Report, Skipped
from qtctl.errors import AdapterUnavailable
from qtctl.redaction import Redactor

log = logging.getLogger(__name__)

INTERNAL_CODE = CodeDoc(
    code="QT000",
    title="check crashed or overran its time budget",
    severity="error",
    meaning="A check raised an unexpected exception or did not finish within doctor.check_timeout.",
    why="The condition it inspects is unknown: treat the subject as unverified.",
    fix="Run with -v for the traceback and report it; raise doctor.check_timeout if the host is "
    "slow.",
)


@dataclass(frozen=True)
class Selection:
    """Which codes a run reports."""

    select: tuple[str, ...] = ()
    ignore: tuple[str, ...] = ()

    def wants(self, code: str) -> bool:
        """Whether findings with this code are reported; QT000 only goes when ignored by name."""
        if code == INTERNAL_CODE.code:
            return not any(p.strip().upper() == code for p in self.ignore)
        return is_selected(code, self.select, self.ignore)

    def wants_check(self, check: Check) -> bool:
        """Whether any code of the check is reported."""
        return any(self.wants(code) for code in check.code_ids)


def run_checks(
    checks: Sequence[Check], ctx: CheckContext, selection: Selection, timeout: float
) -> Report:
    """Run every selected check once and collect a report."""
    started = time.monotonic()
    findings: list[Finding] = []
    skipped: list[Skipped] = []
    ran: list[str] = []
    # The one gate for everything a report shows: secrets masked, non-printables escaped.
    shown = Redactor.of(ctx.config.services.secret_patterns).shown
    for check in checks:
        if not selection.wants_check(check):
            continue
        outcome = _run_one(check, ctx, timeout)
        if isinstance(outcome, Skipped):
            skipped.append(dataclasses.replace(outcome, reason=shown(outcome.reason)))
            continue
        ran.append(check.name)
        findings.extend(f.cleaned(shown) for f in outcome if selection.wants(f.code))
    linked = link_by_subject(findings)
    return Report(tuple(linked), tuple(skipped), tuple(ran), time.monotonic() - started)


def _run_one(check: Check, ctx: CheckContext, timeout: float) -> list[Finding] | Skipped:
    box: dict[str, object] = {}

    def target() -> None:
        try:
            box["findings"] = list(check.run(ctx))
        except AdapterUnavailable as exc:
            box["skipped"] = Skipped(check.name, exc.reason, exc.backend)
        except Exception as exc:
            box["error"] = exc
            box["trace"] = traceback.format_exc()

    thread = threading.Thread(target=target, name=f"check:{check.name}", daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        return [_internal(check, f"did not finish within {timeout:g} s (doctor.check_timeout)")]
    if "skipped" in box:
        return box["skipped"]  # type: ignore[return-value]
    if "error" in box:
        log.debug("check %s crashed:\n%s", check.name, box["trace"])
        return [_internal(check, _describe(box["error"]), str(box["trace"]).splitlines()[-6:])]
    return box["findings"]  # type: ignore[return-value]


def _describe(exc: object) -> str:
    return f"crashed: {type(exc).__name__}: {exc}"


def _internal(check: Check, message: str, detail: Iterable[str] = ()) -> Finding:
    return Finding(
        code="QT000",
        severity=Severity.ERROR,
        subject=f"check {check.name}",
        message=message,
        cause="internal-error",
        detail=tuple(detail),
        fix_hint=INTERNAL_CODE.fix,
    )
