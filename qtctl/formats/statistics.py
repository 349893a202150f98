"""`--statistics` (count, code, `[*]` fixable marker, title; most frequent first) and the
closing `Found N problems` summary line."""

from __future__ import annotations

from collections import Counter

from qtctl.formats.model import Results


def statistics(results: Results) -> str:
    """One line per code: `   3  QT104  [*] unit file problems`."""
    from qtctl.catalog import all_codes

    docs = all_codes()
    counts = Counter(e.finding.code for e in results.entries)
    fixable = {e.finding.code for e in results.entries if e.finding.fixable}
    rows = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return "\n".join(
        f"{count:>5}  {code:<6} {'[*]' if code in fixable else '   '} "
        f"{docs[code].title if code in docs else ''}".rstrip()
        for code, count in rows
    )


def summary(results: Results) -> str:
    """`Found 7 problems (2 acknowledged): [*] 3 fixable with qtctl fix --apply.`, or
    `All checks passed.`"""
    total = len(results.entries)
    if not total:
        return "All checks passed."
    acked = sum(not e.counts for e in results.entries)
    fixable = sum(e.finding.fixable and e.counts for e in results.entries)
    head = f"Found {total} problem{'s' if total != 1 else ''}"
    if acked:
        head += f" ({acked} acknowledged)"
    if fixable and results.tool == "doctor":
        return f"{head}: [*] {fixable} fixable with `qtctl fix --apply` (preview: `qtctl fix`)."
    return f"{head}."


def plan_summary(runnable: int, unsafe: int, only: int, held: int) -> str:
    """The fix preview's closing line: `Found 7 problems: [*] 3 fixable with --apply, 2 need
    --unsafe, 1 needs --only UNIT, 1 held back or manual`; the counts are the planned repairs by the
    rule that holds them (`Repair.rule`: unsafe, live-mode, any other)."""
    total = runnable + unsafe + only + held
    parts = [f"[*] {runnable} fixable with --apply"]
    parts += [f"{unsafe} need{'s' if unsafe == 1 else ''} --unsafe"] if unsafe else []
    parts += [f"{only} need{'s' if only == 1 else ''} --only UNIT"] if only else []
    parts += [f"{held} held back or manual"] if held else []
    return f"Found {total} fixable problem{'s' if total != 1 else ''}: {', '.join(parts)}."
