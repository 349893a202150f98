"""`concise` (one `path:line: CODE message` line per finding) and `json-lines` (one JSON object
per finding), plus the JSON document: the report's own shape with each finding's location,
fingerprint and acknowledgement added."""

from __future__ import annotations

import json

from qtctl.escaping import printable
from qtctl.formats.model import Entry, Results


def where(entry: Entry) -> str:
    """`path:line`, `path` or the logical subject."""
    loc = entry.location
    if not loc.path:
        return entry.finding.subject
    return f"{loc.path}:{loc.line}" if loc.line else loc.path


def concise(results: Results) -> str:
    """ruff's concise format: `path:line: CODE [*] message (subject)`; acks marked. One
    finding is one line: every non-printable character of it (a newline in a file name, a
    baseline's reason) is escaped."""
    lines = []
    for entry in results.entries:
        f = entry.finding
        fix = " [*]" if f.fixable else ""
        named = entry.location.path and f.subject != entry.location.path
        about = f" ({f.subject})" if named else ""
        ack = f" [{entry.ack.label()}]" if entry.ack else ""
        lines.append(printable(f"{where(entry)}: {f.code}{fix} {f.message}{about}{ack}"))
    return "\n".join(lines)


def entry_dict(entry: Entry) -> dict[str, object]:
    """One finding with where it is, its fingerprint and its acknowledgement."""
    doc = entry.finding.as_dict()
    # the path escaped as the subject is: a byte that was not UTF-8 as `\xNN`, never a lone
    # surrogate strict JSON readers refuse
    doc["location"] = {"path": printable(entry.location.path), "line": entry.location.line}
    doc["fingerprint"] = entry.fingerprint
    ack = entry.ack
    doc["acknowledged"] = (
        None
        if ack is None
        else {
            "reason": ack.reason,
            "expires": ack.expires,
            "expired": ack.expired,
            "source": ack.source,
        }
    )
    return doc


def json_document(results: Results) -> str:
    """The report document (schema qtctl.report/1), its findings carrying location,
    fingerprint and acknowledgement; `status` and `summary` count what decides the exit
    (acknowledged findings are listed, not counted)."""
    counted = results.counted
    doc = results.report.as_dict()
    doc["tool"] = results.tool
    doc["status"] = counted.status
    doc["summary"] = counted.summary()
    doc["findings"] = [entry_dict(e) for e in results.entries]
    return json.dumps(doc, indent=2)


def json_lines(results: Results) -> str:
    """One compact JSON object per finding (nothing when there is none)."""
    return "\n".join(json.dumps(entry_dict(e), separators=(",", ":")) for e in results.entries)
