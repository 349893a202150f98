"""JUnit XML: one test suite per code, one failing test case per finding (an acknowledged one
skipped, with its reason), as CI test-report viewers read it."""

from __future__ import annotations

from collections import defaultdict
from xml.etree import ElementTree as ET

from qtctl.formats.model import Entry, Results
from qtctl.formats.text import where


def _case(suite: ET.Element, entry: Entry) -> None:
    f = entry.finding
    case = ET.SubElement(suite, "testcase", classname=f"qtctl.{f.code}", name=where(entry))
    if entry.location.path:
        case.set("file", entry.location.path)
        if entry.location.line:
            case.set("line", str(entry.location.line))
    if not entry.counts and entry.ack is not None:
        ET.SubElement(case, "skipped", message=_clean(entry.ack.label()))
        return
    failure = ET.SubElement(case, "failure", message=_clean(f.message), type=f.code)
    failure.text = _clean("\n".join([f"{f.severity}: {f.subject}: {f.message}", *f.detail]))


def _clean(text: str) -> str:
    """XML 1.0 cannot carry most control characters, even escaped: show them as \\xNN."""
    return "".join(
        c if c in "\t\n" or (c >= " " and c not in "\ufffe\uffff") else f"\\x{ord(c):02x}"
        for c in text
    )


def junit(results: Results) -> str:
    """The `<testsuites>` document."""
    by_code: dict[str, list[Entry]] = defaultdict(list)
    for entry in results.entries:
        by_code[entry.finding.code].append(entry)
    root = ET.Element("testsuites", name=f"qtctl {results.tool}")
    for code, entries in sorted(by_code.items()):
        skipped = sum(not e.counts for e in entries)
        suite = ET.SubElement(
            root,
            "testsuite",
            name=code,
            tests=str(len(entries)),
            failures=str(len(entries) - skipped),
            errors="0",
            skipped=str(skipped),
        )
        for entry in entries:
            _case(suite, entry)
    failures = sum(e.counts for e in results.entries)
    root.set("tests", str(len(results.entries)))
    root.set("failures", str(failures))
    root.set("errors", "0")
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode")
