"""How a fix plan and its verification read on a terminal.

Everything here is quoted (actions name units, streams and paths; diffs quote files; reasons
quote errors), so it goes through the redaction step first, in both formats, and reaches the
terminal only through `Output.line()` or escaped into `Output.markup()`."""

from __future__ import annotations

from typing import Any

from rich.markup import escape

from qtctl.fix.actions import WriteDropIn
from qtctl.fix.journal import FixRecord
from qtctl.fix.run import FixOutcome, Verified
from qtctl.output import Output
from qtctl.redaction import DEFAULT, Redactor

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
    for verified in outcome.repairs:
        _repair(out, verified, outcome.applied, redactor)
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


def _repair(out: Output, verified: Verified, applied: bool, redactor: Redactor) -> None:
    repair = verified.repair
    f = repair.finding
    shown = redactor.shown
    status = RESULT_STYLE[verified.result] if applied or repair.held else ""
    out.markup(f"[bold]{f.code}[/] {escape(f.subject)} ({escape(f.cause)}) {status}")
    for action in repair.actions:
        # a newline stays only where the action put it (a drop-in's lines), never from a name
        keep = "\n" if isinstance(action, WriteDropIn) else ""
        out.line(f"    $ {shown(action.describe(), keep)}")
    if repair.held:
        out.markup(f"    [yellow]held:[/] {escape(shown(repair.held))}")
    for line in repair.diff.splitlines():
        out.markup(f"    [dim]|[/] {escape(shown(line))}")
    if repair.manual:
        out.line(f"    by hand: {shown(repair.manual)}")
    if verified.after:
        out.line(f"    now: {verified.after.message}")
        for line in verified.after.detail[-6:]:
            out.line(f"    | {line}", style="dim")


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
