"""SARIF 2.1.0 from lint and doctor, validated against the OASIS schema (tests/data), with
the registry's rules, stable fingerprints, physical and logical locations, and suppressions."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from qtctl.catalog import all_codes
from tests.conftest import REPO
from tests.support.lint_tree import lint, write_checkout

SCHEMA = json.loads((REPO / "tests/data/sarif-schema-2.1.0.json").read_text())


def _sarif(cwd: Path, *args: str) -> dict[str, Any]:
    res = lint(cwd, "--format", "sarif", *args)
    assert res.returncode in (0, 1), res.stderr
    doc: dict[str, Any] = json.loads(res.stdout)
    jsonschema.Draft4Validator(SCHEMA).validate(doc)
    return doc


@pytest.fixture(scope="module")
def checkout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_checkout(tmp_path_factory.mktemp("sarif"), broken=True)


def test_the_schema_is_the_oasis_one() -> None:
    oasis = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/"
    assert SCHEMA["id"] == oasis + "sarif-schema-2.1.0.json"
    jsonschema.Draft4Validator.check_schema(SCHEMA)
    with pytest.raises(jsonschema.ValidationError):  # the schema does reject a broken log
        jsonschema.Draft4Validator(SCHEMA).validate({"version": "2.1.0", "runs": [{}]})


def test_lint_sarif_is_valid_and_complete(checkout: Path) -> None:
    doc = _sarif(checkout)
    run = doc["runs"][0]
    rules = run["tool"]["driver"]["rules"]
    docs = all_codes()
    assert [r["id"] for r in rules] == list(docs)  # every code, in a stable order
    qt104 = rules[list(docs).index("QT104")]
    assert qt104["shortDescription"]["text"] == docs["QT104"].title
    assert docs["QT104"].why in qt104["help"]["text"]  # the text `qtctl explain` prints
    assert "helpUri" not in qt104  # no lint.docs_url configured
    results = run["results"]
    assert len(results) == 8
    for result in results:
        assert rules[result["ruleIndex"]]["id"] == result["ruleId"]
        physical = result["locations"][0]["physicalLocation"]
        assert not physical["artifactLocation"]["uri"].startswith("/")
    first = results[0]
    assert first["ruleId"] == "QT104" and first["level"] == "error"
    assert first["locations"][0]["physicalLocation"] == {
        "artifactLocation": {"uri": "units/quantum-ai.service"},
        "region": {"startLine": 11},
    }


def test_fingerprints_survive_moved_lines(checkout: Path, tmp_path: Path) -> None:
    before = _sarif(checkout)["runs"][0]["results"]
    moved = write_checkout(tmp_path, broken=True)
    unit = moved / "units/quantum-ai.service"
    unit.write_text("# a comment on top\n\n" + unit.read_text())
    after = _sarif(moved)["runs"][0]["results"]
    prints = [r["partialFingerprints"] for r in before]
    assert prints == [r["partialFingerprints"] for r in after]
    assert len({p["qtctlFindingHash/v1"] for p in map(dict, prints)}) == len(prints)
    lines = [
        r["locations"][0]["physicalLocation"].get("region", {}).get("startLine") for r in after[:1]
    ]
    assert lines == [13]


def test_docs_url_and_an_acknowledged_result(checkout: Path, tmp_path: Path) -> None:
    config = tmp_path / "qtctl.toml"
    config.write_text('[lint]\ndocs_url = "https://example.org/checks/"\n')
    baseline = tmp_path / "baseline.json"
    lint(checkout, "-c", str(config), "--select", "QT703", "--write-baseline", str(baseline))
    doc = _sarif(checkout, "-c", str(config), "--baseline", str(baseline))
    run = doc["runs"][0]
    assert run["tool"]["driver"]["rules"][0]["helpUri"] == "https://example.org/checks/#qt000"
    suppressed = [r for r in run["results"] if "suppressions" in r]
    assert [(r["ruleId"], r["suppressions"][0]["status"]) for r in suppressed] == [
        ("QT703", "accepted")
    ]


def test_doctor_sarif_has_logical_locations(tmp_path: Path) -> None:
    config = tmp_path / "qtctl.toml"
    config.write_text(
        '[redis]\nurl = "redis://127.0.0.1:1/0"\nsocket_timeout = 0.2\n'
        f'[fix]\nstate_dir = "{tmp_path / "state"}"\n'
    )
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "qtctl",
            "doctor",
            "-c",
            str(config),
            "--select",
            "QT400",
            "--format",
            "sarif",
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )
    assert res.returncode == 1
    doc = json.loads(res.stdout)
    jsonschema.Draft4Validator(SCHEMA).validate(doc)
    [result] = doc["runs"][0]["results"]
    assert result["ruleId"] == "QT400"
    assert result["locations"] == [
        {"logicalLocations": [{"name": "redis", "fullyQualifiedName": "redis", "kind": "resource"}]}
    ]
    assert res.stderr.strip() == "Found 1 problem."
