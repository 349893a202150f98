"""How a fix plan and its verification read on a terminal.

Everything here is quoted (actions name units, streams and paths; diffs quote files; reasons
quote errors), so it goes through the redaction step first, in both formats, and reaches the
terminal only through `Output.line()` or escaped into `Output.markup()`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.markup import escape

from qtctl.engine.incident_rules import RANK
from qtctl.engine.rollup import primary_cause
from qtctl.fix.actions import WriteDropIn
from qtctl.fix.journal import FixRecord
from qtctl.fix.repair import Repair
from qtctl.fix.run import FixOutcome, Verified
from qtctl.output import Output
from qtctl.redaction import DEFAULT, Redactor

FOLD_AT = 3  # this many repairs of one kind with one outcome are shown once
SHOWN = 6  # subjects named in a folded group
MAX_ACTIONS = 8  # actions of one repair shown without -v
MAX_DIFF = 20  # diff lines of one repair shown without -v
RESULT_STYLE = {
    "fixed": "[green]fixed[/]",
    "still-failing": "[bold red]still failing[/]",
    "held": "[yellow]held back[/]",
    "not-applied": "[dim]not applied (preview)[/]",
}


def render_outcome(out: Output, outcome: FixOutcome, redactor: Redactor = DEFAULT) -> None:
    """The plan (preview) or the verified result (--apply), secrets masked."""
    if out.format == "json":
        out.json(redacted(outcome.as_dict(), redactor))
        return
    if not outcome.repairs:
        out.line("nothing to fix: no fixable finding")
        return
    title = "applied fix " + outcome.record.id if outcome.record else "fix plan (preview)"
    out.markup(f"[bold]{escape(title)}[/]")
    _headline(out, outcome)
    for group in _groups(outcome.repairs, out.verbosity):
        if len(group) >= FOLD_AT:
            _repair_group(out, group, outcome.applied, redactor)
        else:
            for verified in group:
                _repair(out, verified, outcome.applied, redactor, out.verbosity)
    if not outcome.applied:
        runnable = sum(v.repair.runnable for v in outcome.repairs)
        out.line(
            f"{runnable} repair(s) would run; apply with `qtctl fix --apply`"
            + (" (restarts need --unsafe)" if runnable else "")
        )
    for failure in outcome.failures:
        out.markup(f"[bold red]refused:[/] {escape(redactor.shown(failure['error']))}")
    if outcome.applied and outcome.record:
        out.line(f"journal: {outcome.record.id} (undo with `qtctl fix --undo LAST`)")


def _headline(out: Output, outcome: FixOutcome) -> None:
    """What the plan does first: the runnable repairs, then how many are held and why."""
    runnable = [v for v in outcome.repairs if v.repair.runnable]
    held = [v for v in outcome.repairs if v.repair.held]
    first = runnable[0].repair.finding if runnable else None
    lead = f"; first: {first.code} {escape(first.subject)}" if first else ""
    out.markup(f"{len(runnable)} runnable, {len(held)} held{lead}")


def _groups(repairs: Sequence[Verified], verbosity: int) -> list[list[Verified]]:
    """Repairs of the same kind with the same outcome together (one each with -v), in
    `_order`."""
    if verbosity > 0:
        return [[v] for v in repairs]
    groups: dict[tuple[object, ...], list[Verified]] = {}
    for v in repairs:
        groups.setdefault(_shape(v), []).append(v)
    return sorted(groups.values(), key=_order)


def _order(group: list[Verified]) -> tuple[bool, int, int]:
    """Runnable first; then causes before consequences (the incident rules' rank), then the
    largest groups."""
    first = group[0].repair
    return (not first.runnable, RANK.get(first.finding.code, len(RANK)), -len(group))


def _shape(v: Verified) -> tuple[object, ...]:
    r = v.repair
    kinds = tuple(type(a).__name__ for a in r.actions)
    return (r.finding.code, primary_cause(r.finding.cause), v.result, r.rule, bool(r.held), kinds)


def _repair_group(
    out: Output, group: Sequence[Verified], applied: bool, redactor: Redactor
) -> None:
    first = group[0].repair
    f = first.finding
    status = RESULT_STYLE[group[0].result] if applied or first.held else ""
    out.markup(f"[bold]{f.code}[/] {escape(primary_cause(f.cause))} x {len(group)} {status}")
    names = [v.repair.finding.subject for v in group]
    more = f" (+{len(names) - SHOWN} more, -v lists all)" if len(names) > SHOWN else ""
    out.line(f"    for: {redactor.shown(', '.join(names[:SHOWN]))}{more}")
    out.line(f"    e.g. {redactor.shown(f.subject)}:")
    _actions(out, first, redactor, 0)
    if first.held:
        out.markup(f"    [yellow]held:[/] {escape(redactor.shown(first.held))}")


def _repair(
    out: Output, verified: Verified, applied: bool, redactor: Redactor, verbosity: int = 0
) -> None:
    repair = verified.repair
    f = repair.finding
    shown = redactor.shown
    status = RESULT_STYLE[verified.result] if applied or repair.held else ""
    out.markup(f"[bold]{f.code}[/] {escape(f.subject)} ({escape(f.cause)}) {status}")
    _actions(out, repair, redactor, verbosity)
    if repair.held:
        out.markup(f"    [yellow]held:[/] {escape(shown(repair.held))}")
    diff = repair.diff.splitlines()
    cut = diff if verbosity > 0 else diff[:MAX_DIFF]
    for line in cut:
        out.markup(f"    [dim]|[/] {escape(shown(line))}")
    if len(cut) < len(diff):
        out.line(f"    | ... {len(diff) - len(cut)} more diff line(s) with -v")
    if repair.manual:
        out.line(f"    by hand: {shown(repair.manual)}")
    if verified.after:
        out.line(f"    now: {verified.after.message}")
        for line in verified.after.detail[-6:]:
            out.line(f"    | {line}", style="dim")


def _actions(out: Output, repair: Repair, redactor: Redactor, verbosity: int) -> None:
    """The repair's actions, at most MAX_ACTIONS of them unless -v (a long file list)."""
    actions = repair.actions if verbosity > 0 else repair.actions[:MAX_ACTIONS]
    for action in actions:
        # a newline stays only where the action put it (a drop-in's lines), never from a name
        keep = "\n" if isinstance(action, WriteDropIn) else ""
        out.line(f"    $ {redactor.shown(action.describe(), keep)}")
    if len(actions) < len(repair.actions):
        left = len(repair.actions) - len(actions)
        out.line(f"    $ ... {left} more action(s) (-v or --format json lists them)")


def render_undo(
    out: Output, undone: FixRecord, record: FixRecord, redactor: Redactor = DEFAULT
) -> None:
    """What an undo restored and what it could not."""
    if out.format == "json":
        doc = {
            "schema": "qtctl.fix-undo/1",
            "undone": undone.id,
            "record": record.id,
            "changes": record.changes,
        }
        out.json(redacted(doc, redactor))
        return
    out.markup(f"[bold]undo of {escape(undone.id)}[/] (recorded as {escape(record.id)})")
    for change in record.changes:
        detail = change.get("path") or change.get("unit") or ""
        out.line(f"    {change['kind']} {redactor.shown(str(detail))}")


def redacted(doc: Any, redactor: Redactor) -> Any:
    """A JSON document with every string in it redacted and escaped (keys are qtctl's own;
    a diff keeps its newlines)."""
    if isinstance(doc, str):
        return redactor.shown(doc, keep="\n")
    if isinstance(doc, dict):
        return {key: redacted(value, redactor) for key, value in doc.items()}
    if isinstance(doc, list | tuple):
        return [redacted(item, redactor) for item in doc]
    return doc
