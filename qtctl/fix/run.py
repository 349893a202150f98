"""`qtctl fix` as a library call: check, plan, apply (when asked), re-check, report honestly."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from qtctl.config import Config
from qtctl.doctor import run_doctor
from qtctl.engine.context import CheckContext
from qtctl.engine.findings import Finding
from qtctl.engine.report import Report
from qtctl.fix.apply import apply_repairs
from qtctl.fix.chain import restarted
from qtctl.fix.changes import Change
from qtctl.fix.journal import FixJournal, FixRecord
from qtctl.fix.planner import plan
from qtctl.fix.policy import FixOptions
from qtctl.fix.repair import Repair
from qtctl.fix.undo import undo

SCHEMA = "qtctl.fix/1"
ROOT_CAUSE_HOLD = "root cause first"


@dataclass(frozen=True)
class Verified:
    """A repair and what the re-check says about its finding now."""

    repair: Repair
    after: Finding | None
    settle: str = ""  # what systemd saw of a restarted unit that did not stay up ('' = it did)

    @property
    def result(self) -> str:
        """fixed | still-failing | held | not-applied. A restart is fixed only when the unit
        stayed up past RestartSec= + fix.settle_sec and the re-check agrees."""
        if self.repair.held:
            return "held"
        if not self.repair.runnable:
            return "not-applied"
        if self.settle:
            return "still-failing"
        if self.after is None:
            return "fixed"
        resolves = {c for c in self.repair.resolves.split(",") if c}
        if resolves and not resolves & set(self.after.cause.split(",")):
            return "fixed"  # other problems of the same finding remain, these are gone
        return "still-failing"


@dataclass(frozen=True)
class FixOutcome:
    """What one `qtctl fix` run planned, did and found afterwards."""

    repairs: tuple[Verified, ...]
    applied: bool
    record: FixRecord | None = None
    after: Report | None = None

    @property
    def ok(self) -> bool:
        """No applied repair left its finding behind."""
        return not any(v.result == "still-failing" for v in self.repairs)

    def as_dict(self) -> dict[str, object]:
        """The versioned JSON document."""
        return {
            "schema": SCHEMA,
            "applied": self.applied,
            "record": self.record.id if self.record else None,
            "repairs": [_repair_dict(v) for v in self.repairs],
            "failures": self.failures,
            "held": self.held_by_rule,
        }

    @property
    def held_by_rule(self) -> dict[str, list[str]]:
        """Rule -> the subjects of the repairs it held (protected, budget, chain, ...)."""
        found: dict[str, list[str]] = {}
        for v in self.repairs:
            if v.repair.held:
                found.setdefault(v.repair.rule or "held", []).append(v.repair.finding.subject)
        return found

    @property
    def failures(self) -> list[dict[str, str]]:
        """Actions that refused or failed, with the reason (the rest still ran)."""
        changes = self.record.changes if self.record else []
        return [
            {"action": c["action"], "error": c["error"]} for c in changes if c["kind"] == "failed"
        ]


def run_fix(config: Config, options: FixOptions) -> FixOutcome:
    """Plan repairs for the current findings and, with --apply, carry them out and re-check."""
    ctx = CheckContext(config)
    try:
        before = run_doctor(config, ctx=ctx)
        repairs = plan(before.findings, ctx, options)
        if not options.apply or not any(r.runnable for r in repairs):
            return FixOutcome(tuple(Verified(r, None) for r in repairs), applied=False)
        journal = FixJournal(config.fix.state_dir)
        settled: dict[str, str] = {}
        record = apply_repairs(
            repairs, ctx.systemd, journal, redis=ctx.redis, settings=config.fix, settled=settled
        )
    finally:
        ctx.close()
    repairs, again = _second_pass(config, options, repairs, journal, record)
    settled |= again
    after = run_doctor(config)  # a fresh doctor: the re-check must agree
    still = {(f.code, f.subject): f for f in after.findings}
    verified = tuple(
        Verified(
            r,
            still.get((r.finding.code, r.finding.subject)) if r.runnable else None,
            _settle_of(r, settled) if r.runnable else "",
        )
        for r in repairs
    )
    return FixOutcome(verified, applied=True, record=record, after=after)


def _settle_of(repair: Repair, settled: dict[str, str]) -> str:
    return next(filter(None, (settled.get(u, "") for u in restarted(repair))), "")


def _second_pass(
    config: Config,
    options: FixOptions,
    repairs: list[Repair],
    journal: FixJournal,
    record: FixRecord,
) -> tuple[list[Repair], dict[str, str]]:
    """Restarts held only because their root cause was still there may run once it is fixed."""
    waiting = {_key(r): r.finding.cause for r in repairs if r.held.startswith(ROOT_CAUSE_HOLD)}
    if not waiting:
        return repairs, {}
    done = sum(1 for c in record.changes if c["kind"] == Change.RESTART)
    ctx = CheckContext(config)
    settled: dict[str, str] = {}
    try:
        # The unit's old failure, re-read against the repaired files, no longer shows the cause
        # it was held for: judge it by that cause, whose root must now be gone.
        findings = [
            dataclasses.replace(f, cause=waiting[(f.code, f.subject)])
            if (f.code, f.subject) in waiting
            else f
            for f in run_doctor(config, ctx=ctx).findings
        ]
        again = {_key(r): r for r in plan(findings, ctx, options, done=done)}
        replanned = {k: r for k, r in again.items() if k in waiting}  # with today's reason
        ready = [r for r in replanned.values() if r.runnable]
        if ready:
            apply_repairs(ready, ctx.systemd, journal, record, settings=config.fix, settled=settled)
    finally:
        ctx.close()
    return [replanned.get(_key(r), r) for r in repairs], settled


def _key(repair: Repair) -> tuple[str, str]:
    return repair.finding.code, repair.finding.subject


def run_undo(config: Config, ref: str) -> tuple[FixRecord, FixRecord]:
    """Undo a recorded fix: (the record undone, the undo's own record)."""
    journal = FixJournal(config.fix.state_dir)
    record = journal.load(ref)
    ctx = CheckContext(config)
    try:
        return record, undo(record, ctx.systemd, journal, redis=ctx.redis)
    finally:
        ctx.close()


def _repair_dict(v: Verified) -> dict[str, object]:
    f = v.repair.finding
    return {
        "code": f.code,
        "subject": f.subject,
        "cause": f.cause,
        "actions": [a.describe() for a in v.repair.actions],
        "held": v.repair.held,
        "manual": v.repair.manual,
        "diff": v.repair.diff,
        "rule": v.repair.rule,
        "result": v.result,
        "settle": v.settle,
        "after": v.after.as_dict() if v.after else None,
    }
