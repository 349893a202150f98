"""Output formats for doctor and lint, one small module each; `show` picks and prints one.

Machine formats write only their document to stdout; the summary line then goes to stderr.
`full` (alias `table`) and `markdown` are the report renderers of `qtctl.output`."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from qtctl.errors import UsageError
from qtctl.escaping import printable
from qtctl.formats.ci import github, gitlab
from qtctl.formats.junit import junit
from qtctl.formats.model import Results
from qtctl.formats.sarif import sarif
from qtctl.formats.statistics import statistics, summary
from qtctl.formats.text import concise, json_document, json_lines

if TYPE_CHECKING:
    from qtctl.output import Output

DOCUMENTS: dict[str, Callable[[Results], str]] = {
    "json": json_document,
    "json-lines": json_lines,
    "github": github,
    "gitlab": gitlab,
    "junit": junit,
}
# The first three are the ones every command knows.
FORMATS: tuple[str, ...] = ("table", "json", "markdown", "full", "concise", "json-lines")
FORMATS += ("github", "gitlab", "sarif", "junit")


def check_format(name: str) -> str:
    """The format's name, or a usage error listing them."""
    if name not in FORMATS:
        raise UsageError(f"--format must be one of {', '.join(FORMATS)}, got {name!r}")
    return name


def show(out: Output, results: Results, fmt: str, stats: bool, docs_url: str = "") -> None:
    """Print `results` in `fmt`; with `stats` the statistics table instead of the findings."""
    if stats:
        out.text(statistics(results) or "no findings")
        out.note(summary(results))
        return
    if fmt in ("full", "table", "markdown"):
        _full(out, results, fmt)
    elif fmt == "concise":
        body = concise(results)
        out.text(f"{body}\n{summary(results)}" if body else summary(results))
    else:
        document = sarif(results, docs_url) if fmt == "sarif" else DOCUMENTS[fmt](results)
        if document:
            out.text(document)
        out.note(summary(results))


def _full(out: Output, results: Results, fmt: str) -> None:
    """The report as `qtctl.output` renders it, then the acknowledged findings and the
    summary (the report's own status line counts every finding listed)."""
    from qtctl.output import Output, report_markdown

    if fmt == "markdown":  # titled by the command that ran (`# qtctl lint: warning`)
        title = "# qtctl doctor:"
        out.text(report_markdown(results.report).replace(title, f"# qtctl {results.tool}:", 1))
    else:
        Output(format="table", color=out.color, verbosity=out.verbosity, width=out.width).report(
            results.report
        )
    for entry in results.entries:
        if entry.ack is not None:
            f = entry.finding
            out.line(
                printable(f"{f.code} {f.subject}: {entry.ack.label()}"),  # one line each
                style="yellow" if entry.ack.expired else "dim",
            )
    out.line(summary(results))
