"""Each cause of a down unit against the real systemd: one sandbox, many broken units.

Setup steps (200, 203, 209, 226, 243, a missing EnvironmentFile, ExecStartPre/Post), the sandbox
(SIGSYS from SystemCallFilter=, EROFS under ProtectSystem=strict), a start limit on 200/CHDIR,
a flapping unit with two causes across its runs, a Requires= of a missing or failed unit, a unit
failing because the fleet's Redis is down, the fresh re-check of a unit that recovered, and QT107
(a deploy without a restart).
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator

import pytest

from qtctl.sandbox import BoxFile, Sandbox, SandboxSpec

pytestmark = [pytest.mark.sandbox, pytest.mark.slow]
ROOT = "/home/qt/quantum_trader"
GHOST = "/opt/quantum/microservices/sleeper"
SLEEP = f"/usr/bin/python3 {ROOT}/microservices/sleeper/main.py"
FLAP = """\
import os
path = "/var/tmp/flap-runs"
runs = int(open(path).read()) if os.path.exists(path) else 0
open(path, "w").write(str(runs + 1))
if runs % 2:
    import feature_store_missing
raise KeyError("model_path")
"""
RECOVERS = """\
import os, sys, time
if not os.path.exists("/var/tmp/ready"):
    sys.exit("not ready")
while True:
    time.sleep(3600)
"""
REDIS_CLIENT = """\
import redis
redis.Redis(host="127.0.0.1", port=6379, socket_connect_timeout=1).ping()
"""
STALE_MAIN = "import helper\nimport time\nwhile True:\n    time.sleep(3600)\n"


def service(exec_start: str, extra: str = "", unit: str = "") -> str:
    return (
        f"[Unit]\nDescription=cause test\n{unit}\n[Service]\nExecStart={exec_start}\n{extra}\n"
        "[Install]\nWantedBy=multi-user.target\n"
    )


UNITS = {
    "quantum-ghost-dir.service": service(SLEEP, f"WorkingDirectory={GHOST}\n"),
    "quantum-ghost-loop.service": service(
        SLEEP, f"WorkingDirectory={GHOST}\nRestart=always\nRestartSec=100ms\n"
    ),
    "quantum-ghost-exec.service": service("/opt/quantum/scripts/run.sh"),
    "quantum-ghost-script.service": service(f"/usr/bin/python3 {GHOST}/main.py"),
    "quantum-log-dir.service": service(SLEEP, "StandardOutput=append:/var/log/quantum/x/a.log\n"),
    "quantum-rw-path.service": service(SLEEP, "ReadWritePaths=/var/lib/quantum-missing\n"),
    "quantum-credential.service": service(SLEEP, "LoadCredential=token:/etc/quantum/token\n"),
    "quantum-env-file.service": service(SLEEP, "EnvironmentFile=/etc/quantum/missing.env\n"),
    "quantum-pre.service": service(SLEEP, "ExecStartPre=/bin/sh -c 'exit 3'\n"),
    "quantum-post.service": service(SLEEP, "ExecStartPost=/bin/sh -c 'exit 4'\n"),
    "quantum-seccomp.service": service(
        "/usr/bin/python3 -c 'import socket; socket.socket()'", "SystemCallFilter=~socket\n"
    ),
    "quantum-read-only.service": service(
        '/usr/bin/python3 -c \'open("/var/lib/quantum-state", "w")\'', "ProtectSystem=strict\n"
    ),
    "quantum-flap.service": service(
        f"/usr/bin/python3 {ROOT}/flap.py",
        "Restart=always\nRestartSec=100ms\n",
        "StartLimitIntervalSec=60\nStartLimitBurst=4",
    ),
    "quantum-recovers.service": service(
        f"/usr/bin/python3 {ROOT}/recovers.py",
        "Restart=always\nRestartSec=200ms\n",
        "StartLimitIntervalSec=0",
    ),
    "quantum-needs-redis.service": service(
        SLEEP, "", "Requires=quantum-redis.service\nAfter=quantum-redis.service"
    ),
    "quantum-redis-feed.service": service(
        "/bin/sh -c 'sleep 0.3; exit 1'",
        "Restart=on-failure\nRestartSec=100ms\n",
        "Requires=quantum-redis.service\nAfter=quantum-redis.service",
    ),
    "quantum-dep-exec.service": service("/opt/quantum/bin/absent", "Type=exec\n"),
    "quantum-needs-dep.service": service(
        SLEEP, "", "Requires=quantum-dep-exec.service\nAfter=quantum-dep-exec.service"
    ),
    "quantum-stale.service": service(f"/usr/bin/python3 {ROOT}/microservices/stale/main.py"),
    "quantum-healthy.service": service(SLEEP),
    "quantum-redis-client.service": service(f"{sys.executable} {ROOT}/redis_client.py"),
}
FILES: dict[str, BoxFile | str | bytes] = {
    f"{ROOT}/microservices/sleeper/main.py": "import time\nwhile True:\n    time.sleep(3600)\n",
    f"{ROOT}/scripts/run.sh": BoxFile("#!/bin/sh\nsleep 3600\n", 0o755),
    f"{ROOT}/flap.py": FLAP,
    f"{ROOT}/redis_client.py": REDIS_CLIENT,
    f"{ROOT}/recovers.py": RECOVERS,
    f"{ROOT}/microservices/stale/main.py": STALE_MAIN,
    f"{ROOT}/microservices/stale/helper.py": "VERSION = 1\n",
}
EXPECTED = {
    "quantum-ghost-dir.service": ("QT101", "workdir-missing"),
    "quantum-ghost-loop.service": ("QT101", "start-limit-hit"),
    "quantum-ghost-exec.service": ("QT101", "exec-not-found"),
    "quantum-ghost-script.service": ("QT101", "script-missing"),
    "quantum-log-dir.service": ("QT101", "log-dir-missing"),
    "quantum-rw-path.service": ("QT101", "namespace-path-missing"),
    "quantum-credential.service": ("QT101", "credential-missing"),
    "quantum-env-file.service": ("QT101", "env-file-missing"),
    "quantum-pre.service": ("QT101", "control-process-failed"),
    "quantum-post.service": ("QT101", "control-process-failed"),
    "quantum-seccomp.service": ("QT101", "sandbox-denied"),
    "quantum-read-only.service": ("QT101", "sandbox-denied"),
    "quantum-flap.service": ("QT101", "start-limit-hit"),
    "quantum-recovers.service": ("QT103", "exit-code"),
    "quantum-dep-exec.service": ("QT101", "exec-not-found"),
    "quantum-needs-dep.service": ("QT108", "dependency-down"),
    "quantum-redis-feed.service": ("QT101", "dependency-missing"),
    "quantum-redis-client.service": ("QT101", "dependency-down"),  # the box runs no Redis
}
FAILED = [u for u, (code, _) in EXPECTED.items() if code == "QT101"]
SELECT = ("--select", "QT101,QT103,QT107,QT108")


def settle(box: Sandbox, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    states: list[str] = []
    while time.monotonic() < deadline:
        states = box.systemctl("show", "-P", "ActiveState", *FAILED).stdout.split()
        looped = box.systemctl("show", "-P", "NRestarts", "quantum-recovers.service").stdout
        if states == ["failed"] * len(FAILED) and int(looped.strip() or 0) >= 4:
            box.run("journalctl", "--sync")
            return
        time.sleep(0.2)
    raise AssertionError(f"did not settle: {dict(zip(FAILED, states, strict=False))}")


def doctor(box: Sandbox) -> dict[str, dict[str, object]]:
    res = box.qtctl("--format", "json", "doctor", *SELECT)
    assert res.returncode in (0, 1), res.stderr
    return {f["subject"]: f for f in json.loads(res.stdout)["findings"]}


@pytest.fixture(scope="module")
def box() -> Iterator[Sandbox]:
    with Sandbox(SandboxSpec(units=UNITS, files=FILES, wants=sorted(UNITS))) as sandbox:
        settle(sandbox)
        yield sandbox


@pytest.fixture(scope="module")
def report(box: Sandbox) -> dict[str, dict[str, object]]:
    return doctor(box)


def test_every_cause_is_named(report: dict[str, dict[str, object]]) -> None:
    found = {subject: (f["code"], f["cause"]) for subject, f in report.items()}
    assert found == EXPECTED  # nothing on the healthy, the stale-free or the running units


@pytest.mark.parametrize(
    ("unit", "named"),
    [
        (
            "quantum-ghost-dir.service",
            f"WorkingDirectory={GHOST} does not exist (200/CHDIR); "
            f"the code is likely at {ROOT}/microservices/sleeper",
        ),
        ("quantum-ghost-exec.service", f"likely at {ROOT}/scripts/run.sh"),
        ("quantum-ghost-script.service", f"likely at {ROOT}/microservices/sleeper/main.py"),
        ("quantum-log-dir.service", "folder /var/log/quantum does not exist (209/STDOUT)"),
        ("quantum-rw-path.service", "ReadWritePaths= target /var/lib/quantum-missing does not"),
        (
            "quantum-credential.service",
            "/etc/quantum/token does not exist: the LoadCredential source of token",
        ),
        ("quantum-env-file.service", "EnvironmentFile=/etc/quantum/missing.env does not exist"),
        ("quantum-pre.service", "ExecStartPre=/bin/sh -c exit 3 failed (status 3/NOTIMPLEMENTED)"),
        ("quantum-post.service", "ExecStartPost=/bin/sh -c exit 4 failed (status 4/NOPERMISSION)"),
        ("quantum-seccomp.service", "signal 31/SIGSYS): relax SystemCallFilter=~socket"),
        ("quantum-read-only.service", "ProtectSystem=strict denies /var/lib/quantum-state"),
        ("quantum-redis-client.service", "the fleet's Redis at 127.0.0.1:6379 is down (QT400)"),
    ],
)
def test_the_missing_thing_is_named(
    report: dict[str, dict[str, object]], unit: str, named: str
) -> None:
    assert named in str(report[unit]["message"])


def test_a_start_limit_on_chdir_is_not_transient(report: dict[str, dict[str, object]]) -> None:
    finding = report["quantum-ghost-loop.service"]
    assert "hit its start limit; last failure: workdir-missing" in str(finding["message"])
    assert "may be transient" not in str(finding["fix_hint"])
    assert "fix the workdir-missing that tripped the start limit first" in str(finding["fix_hint"])


def test_a_flapping_unit_summarises_its_two_causes(
    box: Sandbox, report: dict[str, dict[str, object]]
) -> None:
    detail = [str(line) for line in report["quantum-flap.service"]["detail"]]  # type: ignore[union-attr]
    summary = next(line for line in detail if line.startswith("failed 4 times since "))
    assert summary.endswith(
        "2 different causes in the last 4: import-error (2), python-exception (2)"
    ) or summary.endswith(
        "2 different causes in the last 4: python-exception (2), import-error (2)"
    )
    # the evidence is the last run's alone: its import error, not the earlier runs' KeyError
    tail = " ".join(detail[3:])
    assert "feature_store_missing" in tail and "KeyError" not in tail
    last = box.run("cat", "/var/tmp/flap-runs").stdout.strip()
    assert last == "4"


def test_a_requires_of_a_failed_unit_is_dependency_down(
    box: Sandbox, report: dict[str, dict[str, object]]
) -> None:
    shown = box.systemctl("show", "-p", "ActiveState,Result", "quantum-needs-dep.service").stdout
    assert shown.split() == ["Result=success", "ActiveState=inactive"]  # never "failed"
    finding = report["quantum-needs-dep.service"]
    assert "Requires=quantum-dep-exec.service, which has failed" in str(finding["message"])
    assert finding["fixable"] is False


def test_a_failed_unit_whose_restart_is_refused_names_the_missing_unit(
    box: Sandbox, report: dict[str, dict[str, object]]
) -> None:
    name = "quantum-redis-feed.service"
    journal = box.journal(name)
    assert "Failed to schedule restart job: Unit quantum-redis.service not found." in journal
    finding = report[name]
    assert "Requires=quantum-redis.service, which does not exist: systemd refuses to restart" in (
        str(finding["message"])
    )
    assert "(it had stopped on exit-code: exited with status 1)" in str(finding["message"])
    assert finding["facts"] == {
        "kind": "DependencyFacts",
        "unit": name,
        "missing": "quantum-redis.service",
        "provider": "redis-server.service",
        "fragment": f"/etc/systemd/system/{name}",
    }


def test_a_requires_of_a_missing_unit_holds_the_unit_down(box: Sandbox) -> None:
    name = "quantum-needs-redis.service"
    assert box.wait_for(name, ["active"]) == "active"  # a boot transaction starts it anyway
    box.systemctl("stop", name, check=True)
    refused = box.systemctl("start", name)
    assert refused.returncode == 5
    assert "Unit quantum-redis.service not found." in refused.stderr
    # the refusal queues no job and logs nothing: the unit is just inactive, Result=success
    shown = box.systemctl("show", "-p", "LoadState,ActiveState,Result", name)
    assert sorted(shown.stdout.split()) == [
        "ActiveState=inactive",
        "LoadState=loaded",
        "Result=success",
    ]
    missing = box.systemctl("show", "-p", "LoadState,ActiveState", "quantum-redis.service")
    assert sorted(missing.stdout.split()) == ["ActiveState=inactive", "LoadState=not-found"]
    finding = doctor(box)[name]
    assert (finding["code"], finding["cause"]) == ("QT108", "dependency-missing")
    assert "Requires=quantum-redis.service, which does not exist" in str(finding["message"])
    assert "redis-server.service evidently provides it" in str(finding["message"])
    assert finding["facts"] == {
        "kind": "DependencyFacts",
        "unit": name,
        "missing": "quantum-redis.service",
        "provider": "redis-server.service",
        "fragment": f"/etc/systemd/system/{name}",
    }


def test_a_unit_that_recovered_is_no_crash_loop(box: Sandbox) -> None:
    name = "quantum-recovers.service"
    box.write("/var/tmp/ready", "")
    box.wait_for(name, ["active"])
    time.sleep(0.5)
    assert box.systemctl("show", "-P", "SubState", name).stdout.strip() == "running"
    restarts = int(box.systemctl("show", "-P", "NRestarts", name).stdout.strip())
    assert restarts >= 4  # the lifetime counter still says it looped
    # settled once up past RestartSec + 5 s and twice its old run length (seconds on a busy
    # machine); restarts stay in the 300 s loop window, so lifetime counters would keep QT103
    deadline = time.monotonic() + 30
    while name in doctor(box):
        assert time.monotonic() < deadline, "a recovered unit is still called a crash loop"
        time.sleep(1)
    assert box.systemctl("show", "-P", "SubState", name).stdout.strip() == "running"


def test_a_deploy_without_a_restart_is_stale_code(box: Sandbox) -> None:
    name = "quantum-stale.service"
    helper = f"{ROOT}/microservices/stale/helper.py"
    time.sleep(1.2)
    box.write(helper, "VERSION = 2\n")
    finding = doctor(box)[name]
    assert (finding["code"], finding["cause"]) == ("QT107", "stale-code")
    assert f"before {helper} changed" in str(finding["message"])
    box.systemctl("restart", name, check=True)
    box.wait_for(name, ["active"])
    assert name not in doctor(box)
    time.sleep(1.2)
    unit_file = f"/etc/systemd/system/{name}"
    box.write(unit_file, UNITS[name])  # the same text, rewritten by a deploy: still newer
    finding = doctor(box)[name]
    assert f"before {unit_file} changed" in str(finding["message"])
    assert "daemon-reload first" in str(finding["fix_hint"])
