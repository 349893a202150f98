"""How a fix plan and its verification read on a terminal."""

from __future__ import annotations

from rich.markup import escape

from qtctl.fix.journal import FixRecord
from qtctl.fix.run import FixOutcome, Verified
from qtctl.output import Output, printable_detail

RESULT_STYLE = {
    "fixed": "[green]fixed[/]",
    "still-failing": "[bold red]still failing[/]",
    "held": "[yellow]held back[/]",
    "not-applied": "[dim]not applied (preview)[/]",
}


def render_outcome(out: Output, outcome: FixOutcome) -> None:
    """The plan (preview) or the verified result (--apply)."""
    if out.format == "json":
        out.json(outcome.as_dict())
        return
    if not outcome.repairs:
        out.out.print("nothing to fix: no fixable finding")
        return
    title = "applied fix " + outcome.record.id if outcome.record else "fix plan (preview)"
    out.out.print(f"[bold]{title}[/]")
    for verified in outcome.repairs:
        _repair(out, verified, outcome.applied)
    if not outcome.applied:
        runnable = sum(v.repair.runnable for v in outcome.repairs)
        out.out.print(
            f"{runnable} repair(s) would run; apply with `qtctl fix --apply`"
            + (" (restarts need --unsafe)" if runnable else "")
        )
    for failure in outcome.failures:
        out.out.print(f"[bold red]refused:[/] {escape(failure['error'])}")
    if outcome.applied and outcome.record:
        out.out.print(f"journal: {outcome.record.id} (undo with `qtctl fix --undo LAST`)")


def _repair(out: Output, verified: Verified, applied: bool) -> None:
    repair = verified.repair
    f = repair.finding
    status = RESULT_STYLE[verified.result] if applied or repair.held else ""
    out.out.print(f"[bold]{f.code}[/] {escape(f.subject)} ({escape(f.cause)}) {status}")
    for action in repair.actions:
        out.out.print(f"    $ {escape(action.describe())}")
    if repair.held:
        out.out.print(f"    [yellow]held:[/] {escape(repair.held)}")
    for line in repair.diff.splitlines():
        out.out.print(f"    [dim]|[/] {escape(line)}")
    if repair.manual:
        out.out.print(f"    by hand: {escape(repair.manual)}")
    if verified.after:
        out.out.print(f"    now: {escape(verified.after.message)}")
        for line in printable_detail(verified.after.detail[-6:]):
            out.out.print(f"    [dim]| {escape(line)}[/]")


def render_undo(out: Output, undone: FixRecord, record: FixRecord) -> None:
    """What an undo restored and what it could not."""
    if out.format == "json":
        out.json(
            {
                "schema": "qtctl.fix-undo/1",
                "undone": undone.id,
                "record": record.id,
                "changes": record.changes,
            }
        )
        return
    out.out.print(f"[bold]undo of {undone.id}[/] (recorded as {record.id})")
    for change in record.changes:
        detail = change.get("path") or change.get("unit") or ""
        out.out.print(f"    {change['kind']} {escape(str(detail))}")
