"""All terminal output goes through here: one rich Console, three formats.

Rich markup is only ever qtctl's own: text from the fleet goes through `line()` (no markup) or
is escaped, emoji shortcodes are off (`quantum:heartbeat:x` is a key, not a heart), and nothing
that is not printable reaches the terminal (shown as `\\xNN`, see `qtctl.escaping`)."""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TextIO

from rich.console import Console
from rich.markup import escape

from qtctl.engine.findings import CodeDoc, Finding, Severity
from qtctl.engine.report import Report
from qtctl.escaping import md_code, md_name, md_text, printable
from qtctl.redaction import DEFAULT as REDACT

SEVERITY_STYLE = {Severity.ERROR: "bold red", Severity.WARNING: "yellow", Severity.INFO: "cyan"}
STATUS_STYLE = {"ok": "green", "warning": "yellow", "critical": "bold red", "unknown": "magenta"}


@dataclass
class Output:
    """Where qtctl writes: stdout for results, stderr for messages and logs."""

    format: str = "table"
    color: bool = True
    verbosity: int = 0
    width: int | None = None

    def __post_init__(self) -> None:
        no_color = not self.color or "NO_COLOR" in os.environ
        common: dict[str, Any] = {"no_color": no_color, "width": self.width, "highlight": False}
        self.out = Console(soft_wrap=False, emoji=False, **common)
        self.err = Console(stderr=True, soft_wrap=True, emoji=False, **common)

    def error(self, message: str) -> None:
        """One line on stderr: `qtctl: error: ...` (secrets masked, escaped)."""
        self.err.print(f"[bold red]qtctl: error:[/] {escape(REDACT.shown(message))}")

    def note(self, message: str) -> None:
        """An informational line on stderr, hidden by -q."""
        if self.verbosity >= 0:
            self.err.print(escape(REDACT.shown(message)), style="dim")

    def json(self, data: Any) -> None:
        """Machine output: plain JSON on stdout, never styled."""
        write_raw(json.dumps(data, indent=2, sort_keys=False) + "\n")

    def text(self, text: str) -> None:
        """Plain text on stdout, never styled (Markdown, Prometheus, Nagios)."""
        text = printable(text, keep="\n")
        write_raw(text if text.endswith("\n") else text + "\n")

    def line(self, text: str, style: str | None = None, soft_wrap: bool | None = None) -> None:
        """Result lines on stdout through the console, taken literally (no markup): the way
        for any text qtctl did not write itself."""
        self.out.print(printable(text, keep="\n"), markup=False, style=style, soft_wrap=soft_wrap)

    def markup(self, text: str) -> None:
        """A result line on stdout in Rich markup; escape what the caller did not write."""
        self.out.print(printable(text, keep="\n"))

    def rule(self, title: str) -> None:
        """A horizontal rule with a title in Rich markup (escape what the caller did not write)."""
        self.out.rule(printable(title))

    def panel(self, text: str, title: str, style: str = "cyan") -> None:
        """A boxed paragraph, its text taken literally."""
        from rich.panel import Panel
        from rich.text import Text

        self.out.print(Panel(Text(printable(text, keep="\n")), title=title, border_style=style))

    def table(self, title: str, columns: Sequence[str], rows: Iterable[Sequence[str]]) -> None:
        """A table whose cells are Rich markup (escape what the caller did not write)."""
        from rich.table import Table

        table = Table(title=title, show_lines=False)
        for column in columns:
            table.add_column(column)
        for row in rows:
            table.add_row(*(printable(cell) for cell in row))
        self.out.print(table)

    @property
    def columns(self) -> int:
        """The width stdout renders at: the `width` asked for, else COLUMNS or the terminal's."""
        return self.out.width

    def report(self, report: Report) -> None:
        """Render a doctor report in the chosen format."""
        if self.format == "json":
            self.json(report.as_dict())
        elif self.format == "markdown":
            self.text(report_markdown(report))
        else:
            self._report_table(report)

    def _report_table(self, report: Report) -> None:
        from qtctl.incident_table import report_lines

        for line in report_lines(report, self.verbosity, finding_block):
            self.markup(line)
        by_reason: dict[str, list[str]] = {}
        for skipped in report.skipped:
            by_reason.setdefault(f"{skipped.backend} unreachable", []).append(skipped.check)
        for reason, names in by_reason.items():
            self.markup(f"[magenta]skipped ({escape(reason)}):[/] {escape(', '.join(names))}")
        self.line(summary_line(report), style=STATUS_STYLE[report.status])

    def code_index(self, docs: Iterable[CodeDoc]) -> None:
        """The `qtctl explain` listing: one line per code."""
        for doc in docs:
            self.markup(f"[bold]{doc.code}[/]  {escape(doc.title)} ({doc.severity})")

    def config_items(self, rows: Sequence[tuple[str, Any, str]]) -> None:
        """`qtctl config show`: every key with its effective value and where it came from."""
        if self.format == "json":
            self.json({key: {"value": value, "source": src} for key, value, src in rows})
        elif self.format == "markdown":
            lines = ["| key | value | source |", "|---|---|---|"]
            lines += [
                f"| {key} | {_md_cell(md_code(_shown(value)))} | {src} |"
                for key, value, src in rows
            ]
            self.text("\n".join(lines))
        else:
            self._config_table(rows)

    def _config_table(self, rows: Sequence[tuple[str, Any, str]]) -> None:
        from rich.table import Table

        table = Table("key", "value", "source")
        for key, value, src in rows:
            table.add_row(key, escape(printable(_shown(value))), escape(src))
        self.out.print(table)

    def code_doc(self, doc: CodeDoc) -> None:
        """Render one `qtctl explain` entry."""
        if self.format == "json":  # the repair facts type by its name: a class is no JSON
            repair = doc.__dict__.get("repair")
            self.json({**doc.__dict__, "repair": repair.__name__ if repair else None})
            return
        self.markup(f"[bold]{doc.code}[/] {escape(doc.title)} ({doc.severity})\n")
        for label, text in (("What", doc.meaning), ("Why it matters", doc.why), ("Fix", doc.fix)):
            self.markup(f"[bold]{label}:[/] {escape(text)}")


def write_raw(text: str, stream: TextIO | None = None) -> None:
    """Write text unchanged to stdout."""
    (stream or sys.stdout).write(text)
    (stream or sys.stdout).flush()


def finding_block(f: Finding, verbosity: int) -> str:
    """One finding as a few indented lines: headline, cause, detail (-v) and fix."""
    style = SEVERITY_STYLE[f.severity]
    lines = [f"[{style}]{str(f.severity).upper():7}[/] [bold]{f.code}[/] {escape(f.subject)}"]
    lines.append(f"        {escape(f.message)}")
    if f.cause:
        lines.append(f"        [dim]cause:[/] {escape(f.cause)}")
    if f.related:
        lines.append(f"        [dim]see also:[/] {escape(', '.join(f.related))}")
    shown = f.detail if verbosity > 0 else f.detail[:3]
    lines += [f"        [dim]| {escape(line)}[/]" for line in shown]
    if len(shown) < len(f.detail):
        lines.append(f"        [dim]| ... {len(f.detail) - len(shown)} more line(s) with -v[/]")
    if f.fix_hint or f.fixable:
        prefix = "[green]qtctl fix:[/] " if f.fixable else "fix: "
        lines.append(f"        {prefix}{escape(f.fix_hint)}")
    return "\n".join(lines)


def summary_line(report: Report) -> str:
    """`status: critical (2 errors, 1 warning, 0 info; 5 checks, 1 skipped, 0.12 s)`."""
    s = report.summary()
    return (
        f"status: {report.status} ({s['error']} error(s), {s['warning']} warning(s), "
        f"{s['info']} info; {s['checks_run']} checks run, {s['checks_skipped']} skipped, "
        f"{report.duration:.2f} s)"
    )


def report_markdown(report: Report) -> str:
    """The report as a Markdown document (for tickets and chat)."""
    lines = [f"# qtctl doctor: {report.status}", "", summary_line(report), ""]
    if report.findings:
        lines += [
            "| severity | code | subject | finding | cause | fix |",
            "|---|---|---|---|---|---|",
        ]
        for f in report.findings:
            cells = (md_name(f.subject), *(md_text(t) for t in (f.message, f.cause, f.fix_hint)))
            lines.append(f"| {f.severity} | {f.code} | " + " | ".join(map(_md_cell, cells)) + " |")
    for skipped in report.skipped:
        lines.append(f"- skipped {md_code(skipped.check)}: {md_text(skipped.reason)}")
    return "\n".join(lines) + "\n"


def _shown(value: Any) -> str:
    return ", ".join(value) if isinstance(value, tuple) else str(value)


def _md_cell(text: str) -> str:
    """A table cell: a `|` even inside a code span must be escaped (GFM)."""
    return re.sub(r"(?<!\\)\|", r"\\|", text).replace("\n", " ")
