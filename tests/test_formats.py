"""The CI formats through `qtctl lint`: GitHub annotations, GitLab Code Quality, JUnit XML,
JSON lines, --statistics and the table; each checked for the structure its consumer reads."""

from __future__ import annotations

import json
import re
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest

from tests.support.lint_tree import lint, write_checkout

ANNOTATION = re.compile(
    r"^::(error|warning|notice) file=[^,:]+(,line=\d+)?,title=QT\d{3} [^:]+::[^\r\n]+$"
)


@pytest.fixture(scope="module")
def checkout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = write_checkout(tmp_path_factory.mktemp("formats"), broken=True)
    (root / "notes").mkdir()
    (root / "notes/a,b:c%d.txt").write_bytes(b"one\r\ntwo\r\n")  # needs escaping
    return root


def test_github_annotations(checkout: Path) -> None:
    res = lint(checkout, "--format", "github", "--fail-on", "warning")
    lines = res.stdout.splitlines()
    assert res.returncode == 1 and len(lines) == 9
    assert all(ANNOTATION.match(line) for line in lines), lines
    assert lines[0] == (
        "::error file=units/quantum-ai.service,line=11,title=QT104 unit file problems::"
        "MemoryMax='2G # two gigabytes': systemd has no inline comments; the value is invalid "
        "or carries the comment as data"
    )
    assert (
        "::notice file=notes/a%2Cb%3Ac%25d.txt,title=QT302 CRLF or mixed line endings in "
        "source files::CRLF line endings (2 of 2 lines)" in lines
    )
    assert res.stderr.strip() == "Found 9 problems."


def test_gitlab_code_quality(checkout: Path) -> None:
    res = lint(checkout, "--format", "gitlab")
    issues = json.loads(res.stdout)
    assert len(issues) == 9
    for issue in issues:
        assert set(issue) == {"description", "check_name", "fingerprint", "severity", "location"}
        assert issue["severity"] in {"info", "minor", "major", "critical", "blocker"}
        assert set(issue["location"]) == {"path", "lines"}
        assert isinstance(issue["location"]["lines"]["begin"], int)
        assert issue["location"]["lines"]["begin"] >= 1
        assert issue["description"].startswith(issue["check_name"] + " ")
    assert len({i["fingerprint"] for i in issues}) == 9
    assert issues[4] == {
        "description": "QT301 scripts/start-ai.sh has CRLF line endings (2 of 2 lines): the "
        "unit fails to run it",
        "check_name": "QT301",
        "fingerprint": issues[4]["fingerprint"],
        "severity": "critical",
        "location": {"path": "scripts/start-ai.sh", "lines": {"begin": 1}},
    }


def test_junit_xml(checkout: Path) -> None:
    res = lint(checkout, "--format", "junit")
    root = ET.fromstring(res.stdout)
    assert root.tag == "testsuites"
    assert (root.get("tests"), root.get("failures"), root.get("errors")) == ("9", "9", "0")
    suites = {str(s.get("name")): s for s in root.findall("testsuite")}
    assert sorted(suites) == ["QT104", "QT201", "QT202", "QT301", "QT302", "QT703"]
    assert suites["QT104"].get("tests") == "4"
    cases = root.findall("testsuite/testcase")
    assert len(cases) == 9 and all(c.find("failure") is not None for c in cases)
    crlf = suites["QT301"].find("testcase")
    assert crlf is not None
    assert (crlf.get("file"), crlf.get("line"), crlf.get("name")) == (
        "scripts/start-ai.sh",
        "1",
        "scripts/start-ai.sh:1",
    )


def test_json_lines_and_statistics(checkout: Path) -> None:
    res = lint(checkout, "--format", "json-lines")
    rows = [json.loads(line) for line in res.stdout.splitlines()]
    assert [(r["code"], r["location"]["line"]) for r in rows][:2] == [("QT104", 11), ("QT104", 0)]
    stats = lint(checkout, "--statistics")
    assert stats.returncode == 1
    assert stats.stdout.splitlines() == [
        "    4  QT104      unit file problems",
        "    1  QT201      unresolvable import in a service",
        "    1  QT202      fragile sys.path manipulation",
        "    1  QT301      CRLF or BOM in an executed script",
        "    1  QT302      CRLF or mixed line endings in source files",
        "    1  QT703      environment file problems",
    ]
    assert stats.stderr.strip() == "Found 9 problems."


def test_the_table_ends_with_the_summary(checkout: Path) -> None:
    res = lint(checkout, "--format", "full", env={"COLUMNS": "200"})
    assert res.returncode == 1
    assert "QT104 quantum-ai.service" in res.stdout
    assert res.stdout.splitlines()[-1] == "Found 9 problems."
