"""Issue 22's outside review, on a real systemd: no file a protected unit runs or reads is
changed through another unit's finding (F4); an env file only systemd reads needs no access for
the service's user, and fix never chowns a file to a service user (F5); configuration under
secret-looking names is no secret (F2, F6); a failed oneshot job is not re-run (F12); CRLF in an
env file only systemd reads is no finding (F11). The true positives stay."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from typing import Any

import pytest

from qtctl.sandbox import BoxFile, Sandbox, SandboxSpec
from tests.support.fleet import ROOT

pytestmark = pytest.mark.sandbox
ETC = "/etc/systemd/system"
SCRIPTS = f"{ROOT}/scripts"
LONG_SECRET = "9f8e7d6c5b4a39281706f5e4d3c2b1a0"
NOT_SECRETS = {  # F2, F6: every value here is configuration, whatever its name says
    "/etc/quantum/pp.env": "DATABASE_URL=postgresql://qt@localhost:5432/qt\nPARTITION_KEY=symbol\n"
    "SORT_KEY=ts\nAPI_KEY_HEADER=X-Api-Key\nCACHE_KEY_PREFIX=qt:cache:\n",
    "/etc/quantum/rho3.env": "PASSWORD_MIN_LENGTH=12\nAUTH_TIMEOUT_SEC=30\nSECRET_BACKEND=vault\n"
    "COOKIE_DOMAIN=example.com\n",
}
FILES: dict[str, BoxFile | str | bytes] = {
    f"{SCRIPTS}/exit2.sh": BoxFile(b"echo start\r\nsleep 3600\r\n", 0o755),  # F4: CRLF
    f"{SCRIPTS}/exit_src.sh": BoxFile(f". {SCRIPTS}/common.sh\nexec sleep 3600\n", 0o755),
    f"{SCRIPTS}/common.sh": BoxFile(b"MODE=paper\r\nsleep 3600\r\n", 0o755),  # sourced, CRLF
    f"{ROOT}/jobs/flatten.sh": "mkdir -p /var/lib/flatten\necho run >> /var/lib/flatten/runs\n"
    "sleep 30\n",
    f"{SCRIPTS}/sourcer.sh": BoxFile(". /etc/quantum/sourced.env\nexec sleep 3600\n", 0o755),
    f"{SCRIPTS}/src_user.sh": BoxFile(". /etc/quantum/src-user.env || true\nexec sleep 3600\n"),
    "/etc/quantum/src-user.env": BoxFile("FEED_NAME=binance\n", 0o600),  # root only
    "/etc/quantum/rho.env": BoxFile(f"EXCHANGE_API_SECRET={LONG_SECRET}\n", 0o600),  # F5
    "/etc/quantum/leak.env": BoxFile(f"EXCHANGE_API_SECRET={LONG_SECRET}\n", 0o644),
    "/etc/quantum/crlf.env": b"FEED_NAME=binance\r\nBATCH=10\r\n",  # F11
    "/etc/quantum/sourced.env": b"FEED_NAME=binance\r\n",
    **NOT_SECRETS,
}
SH = "/bin/sh -c"
UNITS = {
    "quantum-emergency-exit-two.service": f"ExecStart=/bin/bash {SCRIPTS}/exit2.sh\nRestart=no",
    "quantum-exit-two-dryrun.service": f"ExecStart=/bin/bash {SCRIPTS}/exit2.sh\nRestart=no",
    "quantum-emergency-exit-src.service": f"ExecStart=/bin/bash {SCRIPTS}/exit_src.sh",
    "quantum-src-dryrun.service": f"ExecStart=/bin/bash {SCRIPTS}/common.sh",
    "quantum-rho.service": "User=daemon\nEnvironmentFile=/etc/quantum/rho.env\n"
    f"ExecStart={SH} 'test -n \"$${{EXCHANGE_API_SECRET}}\" && exec sleep 3600'",
    "quantum-leak.service": "User=daemon\nEnvironmentFile=/etc/quantum/leak.env\n"
    f"ExecStart={SH} 'test -n \"$${{EXCHANGE_API_SECRET}}\" && exec sleep 3600'",
    "quantum-pp.service": "User=daemon\nEnvironmentFile=/etc/quantum/pp.env\n"
    "EnvironmentFile=/etc/quantum/rho3.env\nExecStart=/bin/sleep 3600",
    "quantum-envprobe.service": "User=daemon\nEnvironmentFile=/etc/quantum/crlf.env\n"
    f'ExecStart={SH} \'test "$${{FEED_NAME}}" = binance && test "$${{BATCH}}" = 10 '
    "&& exec sleep 3600'",
    "quantum-sourcer.service": "User=daemon\nEnvironmentFile=/etc/quantum/sourced.env\n"
    f"ExecStart=/bin/bash {SCRIPTS}/sourcer.sh",
    "quantum-src-user.service": f"User=daemon\nExecStart=/bin/bash {SCRIPTS}/src_user.sh",
    "quantum-flatten-positions.service": "Type=oneshot\nTimeoutStartSec=2\n"
    f"ExecStart=/bin/bash {ROOT}/jobs/flatten.sh",
}
FIRST: dict[str, dict[str, Any]] = {}  # QT703 findings of the box as it booted
FAILED = [
    "quantum-emergency-exit-two.service",
    "quantum-exit-two-dryrun.service",
    "quantum-src-dryrun.service",
    "quantum-flatten-positions.service",
]


def spec() -> SandboxSpec:
    units = {
        name: f"[Unit]\nDescription=t\n[Service]\n{body}\n[Install]\nWantedBy=multi-user.target\n"
        for name, body in UNITS.items()
    }
    links = {f"{ETC}/multi-user.target.wants/{n}": f"{ETC}/{n}" for n in units}
    return SandboxSpec(units=units, files=FILES, symlinks=links, wants=sorted(units))


@pytest.fixture(scope="module")
def box() -> Iterator[Sandbox]:
    with Sandbox(spec()) as sandbox:
        for unit in FAILED:
            sandbox.wait_for(unit, ["failed"], timeout=60)
        for unit in set(UNITS) - set(FAILED):
            sandbox.wait_for(unit, ["active"], timeout=60)
        time.sleep(0.3)
        sandbox.run("journalctl", "--sync")
        FIRST.update(env_findings(sandbox))  # before any test's fix run changed a file
        yield sandbox


def qtctl(box: Sandbox, *args: str) -> tuple[int, dict[str, Any]]:
    """`qtctl --format json ARGS` on the whole box fleet (every reader of every file known)."""
    env = {"QTCTL__FLEET__UNITS": ",".join(sorted(UNITS)), "QTCTL__FIX__SETTLE_SEC": "1"}
    res = box.qtctl("--format", "json", *args, env=env)
    assert res.returncode in (0, 1), res.stderr
    return res.returncode, json.loads(res.stdout)


def repairs(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {f"{r['code']} {r['subject']}": r for r in doc["repairs"]}


def env_findings(box: Sandbox) -> dict[str, dict[str, Any]]:
    _, doc = qtctl(box, "doctor", "--select", "QT703")
    return {f["subject"]: f for f in doc["findings"] if f["code"] == "QT703"}


def state(box: Sandbox, path: str) -> tuple[bytes, int, int, int]:
    info = os.stat(box.host_path(path))
    return box.host_path(path).read_bytes(), info.st_mode, info.st_uid, info.st_gid


def test_a_script_a_protected_unit_runs_is_not_converted_through_another_unit(
    box: Sandbox,
) -> None:
    # F4: both units run exit2.sh; the dry run's QT301 must not convert the emergency unit's file.
    before = state(box, f"{SCRIPTS}/exit2.sh")
    _, doc = qtctl(box, "fix", "--apply", "--unsafe", "--select", "QT301")
    plan = repairs(doc)
    dryrun = plan["QT301 quantum-exit-two-dryrun.service"]
    assert dryrun["result"] == "held" and dryrun["rule"] == "protected", dryrun
    assert dryrun["held"].startswith(
        f"quantum-emergency-exit-two.service runs or reads {SCRIPTS}/exit2.sh: protected unit"
    )
    assert plan["QT301 quantum-emergency-exit-two.service"]["result"] == "held"
    assert state(box, f"{SCRIPTS}/exit2.sh") == before
    unit = "quantum-exit-two-dryrun.service"
    assert box.systemctl("show", "-P", "ActiveState", unit).stdout.strip() == "failed"


def test_a_file_a_protected_unit_sources_is_not_converted(box: Sandbox) -> None:
    # F4: common.sh is sourced by the protected unit's wrapper and run by a dry-run unit.
    before = state(box, f"{SCRIPTS}/common.sh")
    _, doc = qtctl(box, "fix", "--apply", "--select", "QT301")
    repair = repairs(doc)["QT301 quantum-src-dryrun.service"]
    assert repair["result"] == "held" and repair["rule"] == "protected", repair
    assert "quantum-emergency-exit-src.service runs or reads" in repair["held"]
    assert state(box, f"{SCRIPTS}/common.sh") == before


def test_a_readable_secret_is_made_600_and_never_given_to_the_service_user(box: Sandbox) -> None:
    # The true positive stays; the repair keeps root the owner and the service still starts.
    found = FIRST["/etc/quantum/leak.env"]
    assert found["cause"] == "secrets-readable" and found["severity"] == "error"
    _, doc = qtctl(box, "fix", "--apply", "--select", "QT703")
    repair = repairs(doc)["QT703 /etc/quantum/leak.env"]
    assert repair["result"] == "fixed", repair
    _, mode, uid, _ = state(box, "/etc/quantum/leak.env")
    assert (mode & 0o777, uid) == (0o600, 0)
    box.systemctl("restart", "quantum-leak.service")
    assert box.wait_for("quantum-leak.service", ["active", "failed"]) == "active"


def test_a_root_only_env_file_of_a_user_service_is_right_and_left_alone(box: Sandbox) -> None:
    # F5: the service runs as daemon and sees the variable: systemd read the 0600 root file.
    assert box.systemctl("show", "-P", "ActiveState", "quantum-rho.service").stdout.strip() == (
        "active"
    )
    before = state(box, "/etc/quantum/rho.env")
    assert "/etc/quantum/rho.env" not in FIRST
    # a file the service's own shell sources is read as its user: that one is a finding
    sourced = FIRST["/etc/quantum/src-user.env"]
    assert sourced["cause"] == "unreadable-by-user", sourced
    assert sourced["detail"] == [
        "not readable by daemon: a shell of quantum-src-user.service sources it"
    ]
    qtctl(box, "fix", "--apply", "--unsafe", "--select", "QT703")
    assert state(box, "/etc/quantum/rho.env") == before


def test_configuration_under_secret_looking_names_is_no_finding(box: Sandbox) -> None:
    # F2, F6: a URL without a password, field and header names, a key prefix, a length, a
    # timeout, a backend and a domain.
    before = {path: state(box, path) for path in NOT_SECRETS}
    assert not set(NOT_SECRETS) & set(FIRST), FIRST
    qtctl(box, "fix", "--apply", "--unsafe", "--select", "QT703")
    assert {path: state(box, path) for path in NOT_SECRETS} == before


def test_a_failed_oneshot_job_is_not_run_again(box: Sandbox) -> None:
    # F12: the job overran TimeoutStartSec; a restart would append a second "run".
    runs = box.host_path("/var/lib/flatten/runs")
    assert runs.read_text() == "run\n"
    _, doc = qtctl(box, "fix", "--apply", "--unsafe", "--select", "QT1")
    repair = repairs(doc)["QT101 quantum-flatten-positions.service"]
    assert repair["result"] == "held" and repair["rule"] == "oneshot", repair
    assert repair["held"].startswith("a oneshot job: re-running it repeats its side effects")
    assert runs.read_text() == "run\n"
    named = "--only", "quantum-flatten-positions.service"
    _, doc = qtctl(box, "fix", "--unsafe", "--select", "QT1", *named)  # a preview: runs nothing
    assert repairs(doc)["QT101 quantum-flatten-positions.service"]["rule"] != "oneshot"
    assert runs.read_text() == "run\n"


def test_crlf_in_an_env_file_only_systemd_reads_is_no_finding(box: Sandbox) -> None:
    # F11: the service sees FEED_NAME=binance and BATCH=10 exactly (its test -n passed).
    assert box.systemctl(
        "show", "-P", "ActiveState", "quantum-envprobe.service"
    ).stdout.strip() == ("active")
    before = state(box, "/etc/quantum/crlf.env")
    assert "/etc/quantum/crlf.env" not in FIRST and "/etc/quantum/crlf.env" not in env_findings(box)
    assert FIRST["/etc/quantum/sourced.env"]["cause"] == "crlf"  # a shell sources that one
    qtctl(box, "fix", "--apply", "--unsafe", "--select", "QT703")
    assert state(box, "/etc/quantum/crlf.env") == before
