"""Acknowledgements through the CLI: `qtctl ack` in the state folder (doctor) and baselines
(lint, doctor); acked findings listed, not failing; expired ones fail again; hostile files
refused with one line."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.support.lint_tree import lint, write_checkout


def _qtctl(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "qtctl", *args[:1], "-c", str(config), *args[1:]],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
        env={**os.environ, "COLUMNS": "200"},
    )


@pytest.fixture
def host(tmp_path: Path) -> Path:
    """A host where only QT400 (Redis unreachable) and QT302 (a CRLF file) are selected."""
    code = tmp_path / "code"
    code.mkdir()
    (code / "run.sh").write_bytes(b"echo\r\n")
    config = tmp_path / "qtctl.toml"
    config.write_text(
        '[redis]\nurl = "redis://127.0.0.1:1/0"\nsocket_timeout = 0.2\n'
        f'[fleet]\ncode_roots = ["{code}"]\n[doctor]\nselect = ["QT400", "QT302"]\n'
        f'[fix]\nstate_dir = "{tmp_path / "state"}"\n'
    )
    return config


def _doctor(config: Path, *args: str) -> tuple[int, list[tuple[str, object]]]:
    res = _qtctl(config, "doctor", "--format", "json", *args)
    doc = json.loads(res.stdout)
    acked = [
        (f["code"], f["acknowledged"] and f["acknowledged"]["reason"]) for f in doc["findings"]
    ]
    return res.returncode, acked


def test_ack_list_expire_remove(host: Path, tmp_path: Path) -> None:
    assert _doctor(host) == (1, [("QT302", None), ("QT400", None)])
    added = _qtctl(host, "ack", "QT400", "redis", "--reason", "redis moves tonight", "--for", "24h")
    assert (added.returncode, added.stdout) == (0, "")
    assert added.stderr.startswith("acknowledged: QT400 redis (until 20")
    state = tmp_path / "state"
    assert stat.S_IMODE(state.stat().st_mode) == 0o700
    assert stat.S_IMODE((state / "acks.json").stat().st_mode) == 0o600
    # QT302 is a warning: with the error acknowledged, doctor passes and still lists both
    assert _doctor(host) == (0, [("QT302", None), ("QT400", "redis moves tonight")])
    table = _qtctl(host, "doctor")
    assert "QT400 redis: acknowledged until" in table.stdout
    assert table.stdout.splitlines()[-1] == (
        "Found 2 problems (1 acknowledged): [*] 1 fixable with `qtctl fix --apply` "
        "(preview: `qtctl fix`)."
    )
    listed = _qtctl(host, "ack", "--list")
    assert listed.stdout.startswith("QT400 redis (until ")
    stored = state / "acks.json"  # a day later, as the clock would make it
    doc = json.loads(stored.read_text())
    doc["acks"][0]["expires"] = time.time() - 1
    stored.write_text(json.dumps(doc))
    assert _doctor(host) == (1, [("QT302", None), ("QT400", "redis moves tonight")])
    assert "ack expired" in _qtctl(host, "doctor", "--format", "concise").stdout
    assert _qtctl(host, "ack", "QT400", "redis", "--remove").returncode == 0
    assert _qtctl(host, "ack", "--list").stdout.strip() == "no acks"


def test_statistics_mark_fixable_codes(host: Path) -> None:
    res = _qtctl(host, "doctor", "--statistics")
    assert res.stdout.splitlines() == [
        "    1  QT302  [*] CRLF or mixed line endings in source files",
        "    1  QT400      Redis unreachable, authentication or TLS failure",
    ]
    assert res.stderr.strip() == (
        "Found 2 problems: [*] 1 fixable with `qtctl fix --apply` (preview: `qtctl fix`)."
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["QT400", "redis"], "--reason is required: say why this finding is accepted"),
        (
            ["QT999", "redis", "--reason", "x"],
            "unknown check code 'QT999'; `qtctl explain` lists them",
        ),
        (
            ["QT400", "redis", "--reason", "x", "--for", "soon"],
            "--for expects a duration such as 24h, 30m or 7d, got 'soon'",
        ),
        (["QT400", "redis", "--reason", "x", "--until", "2001-01-01"], "--until is in the past"),
        (
            ["QT400", "redis", "--remove"],
            "no acknowledgement of QT400 redis (see qtctl ack --list)",
        ),
    ],
)
def test_ack_mistakes_exit_2(host: Path, args: list[str], message: str) -> None:
    res = _qtctl(host, "ack", *args)
    assert (res.returncode, res.stderr.strip()) == (2, f"qtctl: error: {message}")


def test_a_state_folder_others_can_write_is_refused(host: Path, tmp_path: Path) -> None:
    (tmp_path / "state").mkdir(mode=0o777)
    os.chmod(tmp_path / "state", 0o777)
    res = _qtctl(host, "ack", "QT400", "redis", "--reason", "x")
    assert res.returncode == 2
    assert "that no one else can write (it is uid 0, mode 0777): acks refused" in res.stderr


def test_doctor_does_not_trust_a_planted_ack_store(host: Path, tmp_path: Path) -> None:
    """Acks in a folder others can write could hide any finding: doctor ignores them, says so
    in one line, and still fails on what it found."""
    assert _qtctl(host, "ack", "QT400", "redis", "--reason", "x").returncode == 0
    os.chmod(tmp_path / "state", 0o777)
    res = _qtctl(host, "doctor", "--format", "json")
    assert res.returncode == 1
    assert [f["acknowledged"] for f in json.loads(res.stdout)["findings"]] == [None, None]
    warning, summary = res.stderr.splitlines()
    assert warning.startswith("acks not applied: ") and "no one else can write" in warning
    assert summary.startswith("Found 2 problems: ")


def test_baseline_acknowledges_what_was_there(tmp_path: Path) -> None:
    checkout = write_checkout(tmp_path / "repo", broken=True)
    written = lint(checkout, "--write-baseline", "qtctl-baseline.json", "--format", "concise")
    assert written.returncode == 0
    assert written.stderr.strip() == "wrote 8 finding(s) to qtctl-baseline.json"
    doc = json.loads((checkout / "qtctl-baseline.json").read_text())
    assert doc["schema"] == "qtctl.baseline/1" and len(doc["acks"]) == 8
    again = lint(checkout, "--baseline", "qtctl-baseline.json", "--format", "concise")
    assert again.returncode == 0
    assert again.stdout.splitlines()[-1] == "Found 8 problems (8 acknowledged)."
    (checkout / "scripts/new.py").write_text("import sys\nsys.path.append(__file__)\n")
    new = lint(
        checkout, "--baseline", "qtctl-baseline.json", "--format", "json", "--fail-on", "warning"
    )
    assert new.returncode == 1
    counted = [f["code"] for f in json.loads(new.stdout)["findings"] if not f["acknowledged"]]
    assert counted == ["QT202"]
    doc["acks"][0]["expires"] = time.time() - 60
    (checkout / "qtctl-baseline.json").write_text(json.dumps(doc))
    expired = lint(checkout, "--baseline", "qtctl-baseline.json", "--select", "QT104")
    assert expired.returncode == 1


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (
            b"{not json",
            "not valid JSON (Expecting property name enclosed in double quotes: "
            "line 1 column 2 (char 1))",
        ),
        (
            b'{"schema": "qtctl.acks/1", "acks": []}',
            "not a qtctl.baseline/1 document (its \"schema\" must be 'qtctl.baseline/1')",
        ),
        (
            b'{"schema": "qtctl.baseline/1", "acks": {}}',
            '"acks" must be a list of at most 100000 entries',
        ),
        (
            b'{"schema": "qtctl.baseline/1", "acks": [{"code": "rm -rf", "subject": "x"}]}',
            "acks[0]: code must look like QT104, got 'rm -rf'",
        ),
        (
            b'{"schema": "qtctl.baseline/1", "acks": [{"code": "QT104", "subject": "x", '
            b'"expires": "tomorrow"}]}',
            "acks[0]: expires must be epoch seconds or null",
        ),
        (
            b'{"schema": "qtctl.baseline/1", "acks": [{"code": "QT104", "subject": "x", '
            b'"expires": NaN}]}',
            "acks[0]: expires must be epoch seconds or null",
        ),
        (
            b"\xff\xfe",
            "not valid JSON ('utf-8' codec can't decode byte 0xff in position 0: "
            "invalid start byte)",
        ),
    ],
)
def test_a_hostile_baseline_is_one_line_exit_2(
    tmp_path: Path, content: bytes, message: str
) -> None:
    (tmp_path / "b.json").write_bytes(content)
    res = lint(tmp_path, "--baseline", "b.json")
    assert (res.returncode, res.stdout) == (2, "")
    assert res.stderr.strip() == f"qtctl: error: baseline b.json: {message}"


def test_a_fifo_baseline_is_refused_without_blocking(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "b.json")
    res = lint(tmp_path, "--baseline", "b.json")
    assert (res.returncode, res.stderr.strip()) == (
        2,
        "qtctl: error: baseline b.json: not a plain file",
    )
