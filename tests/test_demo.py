"""`qtctl demo` end to end: every planted fault found with its code and cause, fixed, the fleet
healthy afterwards, nothing lost from Redis; and the one-line refusal without root."""

from __future__ import annotations

import json

import pytest

from qtctl.cli.app import main
from qtctl.demo.seed import EXPECTED
from tests.conftest import run_cli


@pytest.mark.sandbox
def test_the_incident_is_found_fixed_and_nothing_is_lost() -> None:
    res = run_cli("--format", "json", "demo")
    doc = json.loads(res.stdout) if res.stdout.strip() else {}
    assert res.returncode == 0, (res.stderr[-3000:], _diagnosis(doc))
    assert doc["schema"] == "qtctl.demo/1" and doc["ok"] is True
    assert doc["missing"] == []
    for subject, wanted in EXPECTED.items():
        found = {tuple(pair) for pair in doc["found"][subject]}
        assert wanted <= found, subject
    repairs = {(r["code"], r["subject"]): r["result"] for r in doc["repairs"]}
    for subject, wanted in EXPECTED.items():
        for code, _ in wanted:
            if code != "QT201" or subject != "quantum-risk-proposal.service":
                assert repairs.get((code, subject)) == "fixed", (code, subject)
    assert repairs[("QT201", "quantum-risk-proposal.service")] == "fixed"  # the source patch
    assert doc["after_exit_code"] == 0
    after = {(f["code"], f["subject"]) for f in doc["after"]}
    assert not [f for f in doc["after"] if f["severity"] == "error"]
    assert not [pair for pair in after if pair[1] in EXPECTED]
    assert doc["lost"] == {
        "near-miss entries": 0,
        "ticks": 0,
        "garbage records": 0,
        "dead consumer's entries": 0,
        "near-miss stream left behind": 0,
    }
    assert doc["daemon_restarts"] == {
        "qtctl-bridge.service": 0,
        "qtctl-risk-kernel.service": 0,
        "qtctl-rl-agent.service": 0,
    }
    titles = [s["title"] for s in doc["steps"]]
    assert titles == [
        "Install qtctl's daemons",
        "Diagnose",
        "Preview the repairs",
        "Repair",
        "Diagnose again",
        "Incident summary",
    ]
    summary = doc["steps"][-1]["output"]
    assert summary.startswith("# Fleet health on ") and "0 error(s)" in summary


def _diagnosis(doc: dict[str, object]) -> dict[str, object]:
    """What went wrong, in a failure message: missing, unfixed, what stayed, losses."""
    repairs = doc.get("repairs", [])
    after = doc.get("after", [])
    return {
        "missing": doc.get("missing"),
        "unfixed": [r for r in repairs if r["result"] != "fixed"],  # type: ignore[union-attr]
        "after": [(f["severity"], f["code"], f["subject"], f["message"]) for f in after],  # type: ignore[union-attr]
        "after_exit_code": doc.get("after_exit_code"),
        "lost": doc.get("lost"),
        "daemon_restarts": doc.get("daemon_restarts"),
    }


def test_without_root_it_says_so_in_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("qtctl.sandbox.os.geteuid", lambda: 1000)
    assert main(["demo"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        "qtctl: error: qtctl demo: the systemd sandbox needs root (namespaces and mounts); "
        "run it as root (sudo)"
    )
