"""QT701-QT703 and QT706 against real services in the systemd sandbox, with exact findings."""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterator

import pytest

from qtctl.sandbox import Sandbox
from tests.support.runtime_fleet import EXPECTED_QT701, runtime_spec

pytestmark = pytest.mark.sandbox
LISTENING = {8001, 8002, 8003, 8004, 8005, 8006, 8007, 8008, 8009, 8010, 8011, 8012}


def wait_listening(box: Sandbox, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    ports: set[int] = set()
    while time.monotonic() < deadline:
        out = box.run("ss", "-Htln").stdout
        ports = {int(line.split()[3].rsplit(":", 1)[1]) for line in out.splitlines() if line}
        oom = box.systemctl("show", "-P", "ActiveState", "quantum-oom.service").stdout.strip()
        if ports >= LISTENING and oom == "failed":
            box.run("journalctl", "--sync")
            return
        time.sleep(0.1)
    raise AssertionError(f"services not listening: {sorted(LISTENING - ports)}")


@pytest.fixture(scope="module")
def box() -> Iterator[Sandbox]:
    with Sandbox(runtime_spec()) as sandbox:
        wait_listening(sandbox)
        time.sleep(0.5)  # the hog has touched its memory, the fd unit opened its files
        yield sandbox


def doctor(box: Sandbox, select: str, *env: tuple[str, str]) -> tuple[int, dict[str, object]]:
    res = box.qtctl("--format", "json", "doctor", "--select", select, env=dict(env))
    assert res.returncode in (0, 1), res.stderr
    return res.returncode, json.loads(res.stdout)


def by_subject(doc: dict[str, object], code: str) -> dict[str, dict[str, object]]:
    findings = doc["findings"]
    assert isinstance(findings, list)
    return {f["subject"]: f for f in findings if f["code"] == code}


def test_health_endpoints_exact_findings(box: Sandbox) -> None:
    _, doc = doctor(box, "QT701")
    found = by_subject(doc, "QT701")
    assert {s: f["cause"] for s, f in found.items()} == {
        s: cause for s, (cause, _) in EXPECTED_QT701.items()
    }
    for subject, (_, words) in EXPECTED_QT701.items():
        assert words in str(found[subject]["message"]), found[subject]
    assert found["quantum-api-v6.service"]["message"].startswith(  # type: ignore[union-attr]
        "health endpoint http://[::1]:8005/health"
    )
    assert found["quantum-api-degraded.service"]["severity"] == "warning"
    child = found["quantum-api-child.service"]["detail"]
    assert isinstance(child, list) and child[1].startswith("process: python3 pid ")


def test_health_bodies_are_capped_and_secrets_masked(box: Sandbox) -> None:
    _, doc = doctor(box, "QT701")
    error = by_subject(doc, "QT701")["quantum-api-error.service"]["detail"]
    assert 'body: {"error": "redis connection lost"}' in error  # type: ignore[operator]
    # the 20 MiB binary /healthz answered healthy, read only up to services.max_body_bytes
    assert "quantum-api-huge.service" not in by_subject(doc, "QT701")
    assert "sk-live-123456" not in json.dumps(doc)


def test_probe_timeout_is_configurable(box: Sandbox) -> None:
    _, doc = doctor(box, "QT701", ("QTCTL__SERVICES__PROBE_TIMEOUT_SEC", "0.3"))
    hang = by_subject(doc, "QT701")["quantum-api-hang.service"]
    assert "did not answer within 0.3 s (no response within the probe timeout)" in str(
        hang["message"]
    )


def test_exposed_listeners(box: Sandbox) -> None:
    _, doc = doctor(box, "QT702")
    found = by_subject(doc, "QT702")
    assert sorted(found) == ["quantum-api-public.service", "quantum-api-public6.service"]
    public = found["quantum-api-public.service"]
    assert str(public["message"]).endswith("listens on 0.0.0.0:8004: every interface")
    assert any("IPAddressDeny=any" in line for line in public["detail"])  # type: ignore[union-attr]
    allowed = ("QTCTL__SERVICES__PUBLIC_LISTENERS", "quantum-api-public.service:8004")
    _, doc = doctor(box, "QT702", allowed)
    assert sorted(by_subject(doc, "QT702")) == ["quantum-api-public6.service"]


def test_resource_pressure(box: Sandbox) -> None:
    # the spinner is throttled to its 20 % quota: judge a longer sample at half the quota
    _, doc = doctor(
        box,
        "QT706",
        ("QTCTL__SERVICES__MEMORY_WARN_PCT", "50"),
        ("QTCTL__SERVICES__CPU_WARN_PCT", "50"),
        ("QTCTL__SERVICES__CPU_SAMPLE_SEC", "1"),
    )
    found = {(f["subject"], f["cause"]) for f in doc["findings"]}  # type: ignore[union-attr]
    assert found == {
        ("quantum-hog.service", "memory-near-max"),
        ("quantum-fd-hungry.service", "nofile-near-limit"),
        ("quantum-spinner.service", "cpu-near-quota"),
        ("quantum-oom.service", "oom-kill"),
    }


def test_health_restart_fix_is_verified_and_bounded_by_live_mode(box: Sandbox) -> None:
    box.run("rm", "-f", "/var/lib/qt-runtime/broken")  # the cause is gone; the process still 503s
    live = {"QTCTL__FLEET__LIVE_MODE": "true"}
    res = box.qtctl("--format", "json", "fix", "--select", "QT701", env=live)
    preview = {r["subject"]: r for r in json.loads(res.stdout)["repairs"]}
    assert preview["quantum-api-flaky.service"]["held"] == "restarting a service needs --unsafe"
    args = ("--format", "json", "fix", "--select", "QT701", "--apply", "--unsafe")
    res = box.qtctl(*args, "--only", "quantum-api-flaky.service", env=live)
    repairs = {r["subject"]: r for r in json.loads(res.stdout)["repairs"]}
    assert repairs["quantum-api-flaky.service"]["result"] == "fixed"
    assert repairs["quantum-api-error.service"]["result"] == "held"
    assert repairs["quantum-api-error.service"]["held"].startswith("live mode: name the unit")
    _, doc = doctor(box, "QT701")
    assert "quantum-api-flaky.service" not in by_subject(doc, "QT701")


def test_processes_exiting_during_the_scan_are_skipped(box: Sandbox) -> None:
    box.systemctl("stop", "quantum-worker.service")
    box.run(
        "systemd-run", "--unit", "quantum-blink", "/bin/sh", "-c", "while :; do /bin/true; done"
    )
    try:
        _, doc = doctor(box, "QT7")
        assert not [f for f in doc["findings"] if f["code"] == "QT000"]  # type: ignore[union-attr]
    finally:
        box.systemctl("stop", "quantum-blink.service")


def test_env_file_findings(box: Sandbox) -> None:
    _, doc = doctor(box, "QT703")
    found = by_subject(doc, "QT703")
    assert found["quantum-missing-env.service"]["cause"] == "missing"
    assert found["quantum-missing-env.service"]["severity"] == "error"
    assert "quantum-optional-env.service" not in found
    exchange = found["/etc/quantum/exchange.env"]
    assert exchange["cause"] == "secrets-readable,inline-comment,export-prefix"
    assert exchange["severity"] == "error"
    assert exchange["detail"] == [
        "mode 0644: any user can read BINANCE_API_KEY, BINANCE_API_SECRET",
        "line 3 (BINANCE_API_SECRET): BINANCE_API_SECRET includes the comment '# rotated "
        "2026-10': systemd has no inline comments",
        "line 4 (REDIS_PASSWORD): ignored: systemd has no `export`, so REDIS_PASSWORD is never set",
    ]
    # a root-only file of a User=daemon unit is right: systemd reads it as root (issue 22 F5)
    assert "/etc/quantum/copy1.env" not in found
    broken = found["/etc/quantum/broken.env"]
    assert broken["cause"] == "unbalanced-quote"  # CRLF: only systemd reads it, which strips CR
    assert "MODEL_PATH swallows lines 2-3" in broken["detail"][0]  # type: ignore[index]
    duplicate = found["secret BINANCE_API_KEY"]
    assert duplicate["message"] == "the same value of BINANCE_API_KEY is in 3 files"
    text = json.dumps(doc)
    for secret in ("AKIAEXAMPLEKEY123456", "s3cr3t-value-99", "hunter2hunter2"):
        assert secret not in text


def test_env_file_fixes_secure_rewrite_verify_undo(box: Sandbox) -> None:
    path = "/etc/quantum/exchange.env"
    before = box.host_path(path).read_bytes()
    res = box.qtctl("--format", "json", "fix", "--select", "QT703")
    plan = {r["subject"]: r for r in json.loads(res.stdout)["repairs"]}
    assert plan[path]["actions"] == [f"chown root: {path} && chmod 600 {path}"]  # owner kept
    assert "needs --unsafe" in plan[path]["manual"]
    diff = plan[path]["diff"]
    # the old value, its `# rotated` tail included (systemd reads it as value), is all masked
    assert "-BINANCE_API_SECRET=" not in diff and "**** # rotated" not in diff
    assert "+# rotated 2026-10\n BINANCE_API_SECRET=****\n-export REDIS_PASSWORD=****\n" in diff
    assert "+REDIS_PASSWORD=****\n" in diff
    for secret in ("AKIAEXAMPLEKEY123456", "s3cr3t-value-99", "hunter2hunter2"):
        assert secret not in res.stdout
    assert "/etc/quantum/broken.env" not in plan  # the open quote needs a person: no repair
    res = box.qtctl("--format", "json", "fix", "--select", "QT703", "--apply", "--unsafe")
    repairs = {r["subject"]: r for r in json.loads(res.stdout)["repairs"]}
    assert repairs[path]["result"] == "fixed", repairs[path]
    st = os.stat(box.host_path(path))
    assert oct(st.st_mode & 0o777) == "0o600"
    assert box.run("stat", "-c", "%U", path).stdout.strip() == "root"  # never the service user
    text = box.host_path(path).read_text()
    assert "# rotated 2026-10\nBINANCE_API_SECRET=s3cr3t-value-99\nREDIS_PASSWORD=" in text
    _, doc = doctor(box, "QT703")
    assert path not in by_subject(doc, "QT703")
    again = box.qtctl("--format", "json", "fix", "--select", "QT703", "--apply", "--unsafe")
    assert path not in {r["subject"] for r in json.loads(again.stdout)["repairs"]}
    box.qtctl("fix", "--undo", "LAST")  # the idempotent second run recorded nothing
    undone = box.qtctl("fix", "--undo", json.loads(res.stdout)["record"])
    assert undone.returncode == 0, undone.stderr
    assert box.host_path(path).read_bytes() == before
    assert oct(os.stat(box.host_path(path)).st_mode & 0o777) == "0o644"
    assert box.run("stat", "-c", "%U", path).stdout.strip() == "root"


def test_unprivileged_doctor_reads_what_it_may_and_never_crashes(box: Sandbox) -> None:
    box.run("chmod", "o+x", "/root")  # the venv's interpreter lives under /root (pyenv)
    argv = ["setpriv", "--reuid", "nobody", "--regid", "nogroup", "--clear-groups"]
    res = box.run(
        *argv,
        sys.executable,
        "-m",
        "qtctl",
        "--format",
        "json",
        "doctor",
        "--select",
        "QT701,QT702,QT706",
        env={"NO_COLOR": "1"},
    )
    assert res.returncode in (0, 1), res.stderr
    doc = json.loads(res.stdout)
    assert not [f for f in doc["findings"] if f["code"] == "QT000"]
    # other users' /proc/PID/fd are closed to nobody: said so, never a made-up "healthy"
    [skipped] = [s for s in doc["skipped"] if s["check"] == "service_endpoints"]
    assert skipped["backend"] == "procfs"
    assert skipped["reason"].endswith("run doctor as root for QT701/QT702")
    assert not [f for f in doc["findings"] if f["code"] in ("QT701", "QT702")]
