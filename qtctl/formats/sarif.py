"""SARIF 2.1.0: one run, the rules from the registry's `CodeDoc`s (`qtctl explain` text as
help), physical locations for file findings, logical ones for units, streams and hosts, and
`partialFingerprints` so code-scanning services track a finding across runs."""

from __future__ import annotations

import json
from collections.abc import Mapping

from qtctl import __version__
from qtctl.engine.findings import CodeDoc, Severity
from qtctl.formats.model import Entry, Results

SCHEMA_URI = "https://json.schemastore.org/sarif-2.1.0.json"
LEVEL = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "note"}
FINGERPRINT_KEY = "qtctlFindingHash/v1"


def _rule_name(title: str) -> str:
    """`unit file problems` -> `UnitFileProblems` (SARIF's rule names are identifiers)."""
    words = "".join(c if c.isalnum() else " " for c in title).split()
    return "".join(w[:1].upper() + w[1:] for w in words) or "Rule"


def _level(severity: str) -> str:
    """A CodeDoc's severity (`error/warning`) as a SARIF default level: its worst."""
    for name, level in (("error", "error"), ("warning", "warning")):
        if name in severity:
            return level
    return "note"


def rule(doc: CodeDoc, docs_url: str) -> dict[str, object]:
    """One reportingDescriptor, its help the text `qtctl explain CODE` prints."""
    text = f"What: {doc.meaning}\n\nWhy it matters: {doc.why}\n\nFix: {doc.fix}"
    markdown = (
        f"**{doc.code}** {doc.title}\n\n**What:** {doc.meaning}\n\n"
        f"**Why it matters:** {doc.why}\n\n**Fix:** {doc.fix}\n\n`qtctl explain {doc.code}`"
    )
    descriptor: dict[str, object] = {
        "id": doc.code,
        "name": _rule_name(doc.title),
        "shortDescription": {"text": doc.title},
        "fullDescription": {"text": doc.meaning},
        "help": {"text": text, "markdown": markdown},
        "defaultConfiguration": {"level": _level(doc.severity)},
        "properties": {"fixable": doc.repair is not None},
    }
    if docs_url:
        descriptor["helpUri"] = f"{docs_url}#{doc.code.lower()}"
    return descriptor


def _location(entry: Entry) -> dict[str, object]:
    if entry.location.path:
        physical: dict[str, object] = {"artifactLocation": {"uri": _uri(entry.location.path)}}
        if entry.location.line:
            physical["region"] = {"startLine": entry.location.line}
        return {"physicalLocation": physical}
    subject = entry.finding.subject
    return {
        "logicalLocations": [{"name": subject, "fullyQualifiedName": subject, "kind": "resource"}]
    }


def _uri(path: str) -> str:
    from urllib.parse import quote

    # a byte that was not UTF-8 (surrogateescape) is percent-encoded as the byte it was
    return ("file://" if path.startswith("/") else "") + quote(path, errors="surrogateescape")


def _result(entry: Entry, index: Mapping[str, int]) -> dict[str, object]:
    f = entry.finding
    result: dict[str, object] = {
        "ruleId": f.code,
        "level": LEVEL[f.severity],
        "message": {"text": f"{f.subject}: {f.message}" if entry.location.path else f.message},
        "locations": [_location(entry)],
        "partialFingerprints": {FINGERPRINT_KEY: entry.fingerprint},
        "properties": {"subject": f.subject, "cause": f.cause, "fixable": f.fixable},
    }
    if f.code in index:
        result["ruleIndex"] = index[f.code]
    if entry.ack is not None:
        status = "rejected" if entry.ack.expired else "accepted"
        result["suppressions"] = [
            {"kind": "external", "status": status, "justification": entry.ack.label()}
        ]
    return result


def sarif(results: Results, docs_url: str = "") -> str:
    """The SARIF 2.1.0 log of one run."""
    from qtctl.catalog import all_codes

    docs = list(all_codes().values())
    index = {doc.code: i for i, doc in enumerate(docs)}
    run = {
        "tool": {
            "driver": {
                "name": "qtctl",
                "version": __version__,
                "semanticVersion": __version__,
                "rules": [rule(doc, docs_url) for doc in docs],
            }
        },
        "automationDetails": {"id": f"qtctl/{results.tool}/"},
        "results": [_result(e, index) for e in results.entries],
        "invocations": [{"executionSuccessful": True}],
        "columnKind": "unicodeCodePoints",
    }
    return json.dumps({"$schema": SCHEMA_URI, "version": "2.1.0", "runs": [run]}, indent=2)
