"""CI formats: GitHub workflow annotations and GitLab Code Quality JSON."""

from __future__ import annotations

import json

from qtctl.engine.findings import Severity
from qtctl.escaping import printable
from qtctl.formats.model import Entry, Results

GITHUB_LEVEL = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "notice"}
GITLAB_SEVERITY = {Severity.ERROR: "critical", Severity.WARNING: "major", Severity.INFO: "info"}


def _data(text: str) -> str:
    """A workflow command's message: `%`, CR and LF escaped (the runner's own rules)."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _property(text: str) -> str:
    """A workflow command's property value: also `:` and `,`."""
    return _data(text).replace(":", "%3A").replace(",", "%2C")


def github(results: Results) -> str:
    """`::error file=PATH,line=N,title=CODE title::message` per finding; an acknowledged one
    as a notice saying so."""
    from qtctl.catalog import all_codes

    docs = all_codes()
    lines = []
    for entry in results.entries:
        f = entry.finding
        level = GITHUB_LEVEL[f.severity] if entry.counts else "notice"
        props = []
        if entry.location.path:
            props.append(f"file={_property(entry.location.path)}")
            if entry.location.line:
                props.append(f"line={entry.location.line}")
        title = f"{f.code} {docs[f.code].title}" if f.code in docs else f.code
        props.append(f"title={_property(title)}")
        message = f"{f.subject}: {f.message}" if not entry.location.path else f.message
        if entry.ack:
            message += f" ({entry.ack.label()})"
        lines.append(f"::{level} {','.join(props)}::{_data(message)}")
    return "\n".join(lines)


def _gitlab_issue(entry: Entry) -> dict[str, object]:
    f = entry.finding
    path = printable(entry.location.path or f.subject)  # a byte not UTF-8 as `\xNN`
    description = f"{f.code} {f.message}" + (f" ({entry.ack.label()})" if entry.ack else "")
    return {
        "description": description,
        "check_name": f.code,
        "fingerprint": entry.fingerprint,
        "severity": GITLAB_SEVERITY[f.severity] if entry.counts else "info",
        "location": {"path": path, "lines": {"begin": max(entry.location.line, 1)}},
    }


def gitlab(results: Results) -> str:
    """GitLab Code Quality: a JSON array of issues (a non-file finding's path is its subject)."""
    return json.dumps([_gitlab_issue(e) for e in results.entries], indent=2)
