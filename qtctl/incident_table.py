"""The doctor table as incidents: what is wrong and what to do first at the top, each incident
with its consequences folded under its root, then the other findings rolled up by shared cause,
info folded. `-v` shows every finding in full. Lines are Rich markup; fleet text is escaped."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Sequence

from rich.markup import escape

from qtctl.engine.findings import Finding, Severity
from qtctl.engine.incidents import UNIT_SUFFIXES, Incident
from qtctl.engine.report import Report
from qtctl.engine.rollup import Group, group_incidents, primary_cause, rollup

SEVERITY_STYLE = {Severity.ERROR: "bold red", Severity.WARNING: "yellow", Severity.INFO: "cyan"}
SHOWN_SUBJECTS = 6  # names listed in a rolled-up line before "+N more"
HEADLINE_FROM = 5  # more findings than this (or any incident): the table opens with a headline
FOLD_AT = 3  # this many findings with one cause, or consequences of one kind, are rolled up
INDENT = "        "
BlockFn = Callable[[Finding, int], str]  # one finding in full: Output's finding block


def report_lines(report: Report, verbosity: int, block: BlockFn) -> Iterator[str]:
    """Every line of the table but the skipped and status lines, in order."""
    members = {i for inc in report.incidents for i in inc.members}
    others = [f for i, f in enumerate(report.findings) if i not in members]
    groups = group_incidents(report.incidents)
    yield from _headline([inc for group in groups for inc in group], others)
    numbers = itertools.count(1)
    for same in groups:
        if len(same) == 1 or verbosity > 0:
            for incident in same:
                yield from _incident(next(numbers), incident, verbosity, block)
        else:
            yield from _incident_group(next(numbers), same)
    if verbosity > 0:
        yield from (block(f, verbosity) for f in others)
        return
    shown = [f for f in others if f.severity > Severity.INFO]
    for group in rollup(shown):
        if len(group.findings) >= FOLD_AT:
            yield from _group(group)
        else:
            yield from (block(f, verbosity) for f in group.findings)
    yield from _folded_info([f for f in others if f.severity == Severity.INFO])


def _headline(incidents: Sequence[Incident], others: Sequence[Finding]) -> Iterator[str]:
    """Counts and the first fix; a short report without incidents reads fine without it."""
    if not incidents and len(others) <= HEADLINE_FROM:
        return
    worst = [f for f in others if f.severity == Severity.ERROR]
    yield (
        f"[bold]{len(incidents)} incident(s)[/], {len(others)} other finding(s)"
        f" ({len(worst)} error(s))"
    )
    first = incidents[0].root if incidents else (worst[0] if worst else None)
    if first is not None:
        hint = (incidents[0].fix if incidents else first.fix_hint) or "see below"
        yield f"[bold]fix first:[/] {first.code} {escape(first.subject)}: {escape(hint)}"


def _incident(number: int, incident: Incident, verbosity: int, block: BlockFn) -> Iterator[str]:
    yield f"[bold]INCIDENT {number}[/] ({len(incident.consequences)} consequence(s))"
    yield block(incident.root, verbosity)
    by_kind = _bucket_consequences(incident)
    for kind in by_kind:
        if verbosity > 0:
            yield from (
                f"  [dim]└─ {escape(_why(incident, f))}:[/]\n" + block(f, verbosity) for f in kind
            )
        elif len(kind) >= FOLD_AT:
            yield (
                f"  └─ {len(kind)} x [bold]{kind[0].code}[/] {escape(primary_cause(kind[0].cause))}"
                f": {escape(_names(kind))}"
            )
        else:
            yield from (
                f"  └─ [bold]{f.code}[/] {escape(f.subject)}: {escape(f.message)}" for f in kind
            )
    if incident.fix != incident.root.fix_hint:
        yield f"  [bold]fix first:[/] {escape(incident.fix)}"


def _why(incident: Incident, effect: Finding) -> str:
    """`QT301 -> QT101 (crlf-breaks-script): the script's CRLF line endings stop it ...`."""
    members = dict(zip(incident.members, (incident.root, *incident.consequences), strict=True))
    for link in incident.links:
        if members[link.effect] is effect:
            cause = members[link.cause]
            return f"{cause.code} -> {effect.code} ({link.rule.name}): {link.rule.says}"
    return "caused by the root"


def _incident_group(number: int, same: Sequence[Incident]) -> Iterator[str]:
    root = same[0].root
    style = SEVERITY_STYLE[root.severity]
    arrow = " → ".join(f"{c.code} {primary_cause(c.cause)}" for c in _first_of_kinds(same[0]))
    yield (
        f"[bold]INCIDENT {number}[/] x {len(same)}: [{style}]{root.code}[/] "
        f"{escape(primary_cause(root.cause))} → {escape(arrow)}"
    )
    yield f"{INDENT}e.g. {escape(root.subject)}: {escape(root.message)}"
    yield f"{INDENT}roots: {escape(_names([inc.root for inc in same]))}"
    yield from _fix_line(root, same[0].fix)


def _group(group: Group) -> Iterator[str]:
    style = SEVERITY_STYLE[group.severity]
    first = group.findings[0]
    yield (
        f"[{style}]{str(group.severity).upper():7}[/] [bold]{group.code}[/] "
        f"{escape(group.cause)}: {len(group.subjects)} {_kind(group.subjects)}"
    )
    same = all(f.message == first.message for f in group.findings)
    lead = "" if same else f"e.g. {first.subject}: "
    yield f"{INDENT}{escape(lead + first.message)}"
    yield f"{INDENT}[dim]{escape(_names(group.findings))}[/]"
    yield from _fix_line(first, first.fix_hint)


def _folded_info(info: Sequence[Finding]) -> Iterator[str]:
    if info:
        counts = ", ".join(f"{g.code} x {len(g.findings)}" for g in rollup(info))
        folded = f"{len(info)} info finding(s) folded ({escape(counts)})"
        yield f"[cyan]INFO[/]    {folded}; -v shows them"


def _fix_line(f: Finding, hint: str) -> Iterator[str]:
    if hint or f.fixable:
        prefix = "[green]qtctl fix:[/] " if f.fixable and hint == f.fix_hint else "fix: "
        yield f"{INDENT}{prefix}{escape(hint)}"


def _bucket_consequences(incident: Incident) -> list[list[Finding]]:
    kinds: dict[tuple[str, str], list[Finding]] = {}
    for f in incident.consequences:
        kinds.setdefault((f.code, primary_cause(f.cause)), []).append(f)
    return list(kinds.values())


def _first_of_kinds(incident: Incident) -> list[Finding]:
    return [kind[0] for kind in _bucket_consequences(incident)]


def _kind(subjects: Sequence[str]) -> str:
    units = all(s.endswith(UNIT_SUFFIXES) for s in subjects)
    return "units" if units else "subjects"


def _names(findings: Sequence[Finding]) -> str:
    names = list(dict.fromkeys(f.subject for f in findings))
    more = len(names) - SHOWN_SUBJECTS
    return ", ".join(names[:SHOWN_SUBJECTS]) + (
        f" (+{more} more, -v lists all)" if more > 0 else ""
    )
