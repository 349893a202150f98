"""Every QT104 rule's claim about systemd, checked against the real systemd in one sandbox: what
it ignores, refuses, warns about, applies, and what happens when such a unit starts or dies."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from qtctl.sandbox import Sandbox, SandboxSpec

pytestmark = pytest.mark.sandbox
ETC = "/etc/systemd/system"
OK = "User=daemon\nMemoryMax=64M\nCPUQuota=10%\nRestart=on-failure\n"  # nothing else to say
SLEEP = "ExecStart=/bin/sleep 3600\n"
UNITS = {
    "quantum-lint-syntax.service": f"[Service]\n{SLEEP}{OK}=orphan value\n",
    "quantum-lint-refused.service": f"[Service]\n{SLEEP}ExecStart=/bin/sleep 7\n{OK}",
    "quantum-lint-ignored.service": f"[Unit]\nAfter=not a unit\n[Service]\n{SLEEP}{OK}"
    "Environment=1BAD=x\nReadWritePaths=relative/dir\n",
    "quantum-lint-relative.service": f"[Service]\n{SLEEP}{OK}WorkingDirectory=relative/dir\n",
    "quantum-lint-section.service": f"[Unit]\nRestart=always\n[Service]\n{SLEEP}User=daemon\n"
    "MemoryMax=64M\nCPUQuota=10%\nStartLimitIntervalSec=5\nStartLimitBurst=3\n",
    "quantum-lint-deprecated.service": f"[Service]\n{SLEEP}{OK}MemoryLimit=100M\n",
    "quantum-lint-interval.service": f"[Service]\n{SLEEP}{OK}StartLimitInterval=7\n"
    "WantedBy=multi-user.target\n",
    "quantum-lint-comment.service": f"[Unit]\nDescription=feed # the BTC feed\n[Service]\n{SLEEP}"
    "User=daemon\nCPUQuota=10%\nRestart=on-failure\nMemoryMax=64M # cap\n",
    "quantum-lint-requires.service": f"[Unit]\nRequires=quantum-nowhere.service\n[Service]\n"
    f"{SLEEP}{OK}",
    "quantum-lint-real.service": f"[Service]\n{SLEEP}{OK}",
    "quantum-lint-twice.service": "[Unit]\nWants=quantum-lint-real.service\n"
    f"After=quantum-lint-alias.service\n[Service]\n{SLEEP}{OK}",
    "quantum-lint-chdir.service": f"[Service]\n{SLEEP}{OK}WorkingDirectory=/srv/nowhere\n",
    "quantum-lint-chdir-optional.service": f"[Service]\n{SLEEP}{OK}"
    "WorkingDirectory=-/srv/nowhere\n",
    "quantum-lint-user.service": f"[Service]\n{SLEEP}MemoryMax=64M\nCPUQuota=10%\n"
    "User=quantum-nobody\n",
    "quantum-lint-home.service": "[Service]\nExecStart=/usr/bin/python3 /home/qt/lint/main.py\n"
    f"{OK}ProtectHome=yes\n",
    "quantum-lint-bare.service": "[Service]\nExecStart=/usr/bin/python3 /opt/lint/main.py\n",
    "quantum-emergency-exit-worker.service": f"[Service]\n{SLEEP}User=daemon\nMemoryMax=64M\n"
    "CPUQuota=10%\nRestart=no\n",
    "quantum-lint-killswitch.service": f"[Service]\n{SLEEP}User=daemon\nMemoryMax=64M\n"
    "CPUQuota=10%\n",
    "quantum-lint-oneshot.service": "[Service]\nType=oneshot\nExecStart=/bin/true\nUser=daemon\n"
    "MemoryMax=64M\nCPUQuota=10%\n",
}
LOOP = "import os, time\nprint('uid', os.getuid(), flush=True)\nwhile True:\n    time.sleep(3600)\n"
FILES = {"/home/qt/lint/main.py": LOOP, "/opt/lint/main.py": LOOP}


def spec() -> SandboxSpec:
    links = {f"{ETC}/quantum-lint-alias.service": f"{ETC}/quantum-lint-real.service"}
    return SandboxSpec(units=UNITS, files=FILES, symlinks=links)


@pytest.fixture(scope="module")
def box() -> Iterator[Sandbox]:
    with Sandbox(spec()).boot() as booted:
        for unit in UNITS:  # loaded on demand: systemd logs what it ignores as it reads each
            booted.systemctl("show", "-p", "Id", unit)
        booted.run("journalctl", "--sync")
        yield booted


@pytest.fixture(scope="module")
def lint(box: Sandbox) -> dict[str, Any]:
    res = box.qtctl("--format", "json", "doctor", "--select", "QT104")
    assert res.returncode in (0, 1), res.stderr
    return {f["subject"]: f for f in json.loads(res.stdout)["findings"]}


def show(box: Sandbox, unit: str, prop: str) -> str:
    return box.systemctl("show", "-P", prop, unit).stdout.strip()


def said(box: Sandbox) -> str:
    box.run("journalctl", "--sync")
    return box.run("journalctl", "-o", "cat", "--no-pager", "_PID=1").stdout


def details(lint: dict[str, Any], unit: str) -> str:
    return "\n".join(lint[unit]["detail"])


SECTION, COMMENT = "quantum-lint-section.service", "quantum-lint-comment.service"
# rule -> (unit, what QT104 says at the line, what systemd logs there, (unit, property, value)s)
CLAIMS = {
    "syntax": (
        "quantum-lint-syntax.service",
        ":7: '=orphan value' has no key name: systemd ignores it",
        ":7: Missing key name before '=', ignoring line.",
        (),
    ),
    "refused": (
        "quantum-lint-refused.service",
        "systemd refuses to load it (bad-setting): Service has more than one ExecStart=",
        "quantum-lint-refused.service: Service has more than one ExecStart= setting",
        (("quantum-lint-refused.service", "LoadState", "bad-setting"),),
    ),
    "refused-path": (
        "quantum-lint-relative.service",
        ":7: systemd refuses to load it (bad-setting): WorkingDirectory= path is not absolute",
        ":7: WorkingDirectory= path is not absolute: relative/dir",
        (("quantum-lint-relative.service", "LoadState", "bad-setting"),),
    ),
    "ignored_values": (
        "quantum-lint-ignored.service",
        ":9: systemd ignores this value: invalid environment assignment, ignoring: 1BAD=x",
        ":9: Invalid environment assignment, ignoring: 1BAD=x",
        (("quantum-lint-ignored.service", "Environment", ""),),
    ),
    "wrong_section": (
        SECTION,
        ":8: StartLimitIntervalSec= belongs in [Unit], not [Service]: systemd ignores it there",
        ":8: Unknown key 'StartLimitIntervalSec' in section [Service], ignoring.",
        ((SECTION, "StartLimitIntervalUSec", "10s"),),  # the default, not the 5s written
    ),
    "wrong_section-unit": (
        SECTION,
        ":2: Restart= belongs in [Service], not [Unit]: systemd ignores it there",
        ":2: Unknown key 'Restart' in section [Unit], ignoring.",
        ((SECTION, "Restart", "no"),),
    ),
    "deprecated": (
        "quantum-lint-deprecated.service",
        ":7: MemoryLimit= is deprecated: use MemoryMax=",
        ":7: Unit uses MemoryLimit=; please use MemoryMax= instead.",
        (("quantum-lint-deprecated.service", "MemoryLimit", "104857600"),),  # still applied
    ),
    "deprecated-alias": (
        "quantum-lint-interval.service",
        ":7: StartLimitInterval= is deprecated: use StartLimitIntervalSec= in [Unit]",
        "",  # accepted silently in [Service], and applied
        (("quantum-lint-interval.service", "StartLimitIntervalUSec", "7s"),),
    ),
    "wrong_section-install": (
        "quantum-lint-interval.service",
        ":8: WantedBy= belongs in [Install], not [Service]: systemd ignores it there",
        ":8: Unknown key 'WantedBy' in section [Service], ignoring.",
        (("quantum-lint-interval.service", "WantedBy", ""),),
    ),
    "inline_comments": (
        COMMENT,
        ":2: Description='feed # the BTC feed': systemd has no inline comments; the value is "
        "invalid or carries the comment as data",
        "",  # accepted silently, comment and all
        ((COMMENT, "Description", "feed # the BTC feed"),),
    ),
    "inline_comments-invalid": (
        COMMENT,
        ":8: MemoryMax='64M # cap': systemd has no inline comments",
        ":8: Invalid memory limit '64M # cap', ignoring: Invalid argument",
        ((COMMENT, "MemoryMax", "infinity"),),
    ),
    "spelled_twice": (
        "quantum-lint-twice.service",
        "quantum-lint-real.service is named 2 ways: quantum-lint-alias.service, "
        "quantum-lint-real.service",
        "",
        (("quantum-lint-alias.service", "Id", "quantum-lint-real.service"),),
    ),
}


@pytest.mark.parametrize("rule", sorted(CLAIMS))
def test_each_claim_at_a_line_is_what_systemd_does(
    box: Sandbox, lint: dict[str, Any], rule: str
) -> None:
    unit, claim, logged, shown = CLAIMS[rule]
    assert claim in details(lint, unit)
    if logged:
        path = f"{ETC}/{unit}" if logged.startswith(":") else ""
        assert f"{path}{logged}" in said(box)
    for name, prop, value in shown:
        assert show(box, name, prop) == value, (name, prop)


def test_start_limit_burst_in_service_is_applied_and_not_flagged(
    box: Sandbox, lint: dict[str, Any]
) -> None:
    assert show(box, SECTION, "StartLimitBurst") == "3"  # a compatibility alias in [Service]
    assert "StartLimitBurst" not in details(lint, SECTION)
    assert f"{ETC}/{SECTION}:9:" not in said(box)


def test_requires_on_a_missing_unit_fails_the_start(box: Sandbox, lint: dict[str, Any]) -> None:
    unit = "quantum-lint-requires.service"
    assert "quantum-nowhere.service" in details(lint, unit)
    res = box.systemctl("start", unit)
    assert res.returncode != 0
    assert "Unit quantum-nowhere.service not found." in res.stderr
    assert show(box, unit, "ActiveState") == "inactive"


@pytest.mark.parametrize(
    ("unit", "claim", "status"),
    [
        ("quantum-lint-chdir.service", "WorkingDirectory=/srv/nowhere does not exist", "200"),
        ("quantum-lint-user.service", "User=quantum-nobody does not exist on this host", "217"),
    ],
)
def test_runtime_mistakes_fail_the_start(
    box: Sandbox, lint: dict[str, Any], unit: str, claim: str, status: str
) -> None:
    assert claim in details(lint, unit)
    box.systemctl("start", unit)
    assert box.wait_for(unit, ["failed"]) == "failed"
    assert show(box, unit, "ExecMainStatus") == status


def test_protect_home_hides_the_code(box: Sandbox, lint: dict[str, Any]) -> None:
    unit = "quantum-lint-home.service"
    assert "ProtectHome=yes hides /home, where this service's code lives" in details(lint, unit)
    box.systemctl("start", unit)
    deadline = time.monotonic() + 10
    while "Permission denied" not in box.journal(unit) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert "can't open file '/home/qt/lint/main.py': [Errno 13] Permission denied" in box.journal(
        unit
    )


def test_hardening_claims(box: Sandbox, lint: dict[str, Any]) -> None:
    unit = "quantum-lint-bare.service"
    said_here = details(lint, unit)
    assert "Python service runs as root" in said_here
    assert "no MemoryMax= or CPUQuota=" in said_here
    assert (show(box, unit, "MemoryMax"), show(box, unit, "CPUQuotaPerSecUSec")) == (
        "infinity",
        "infinity",
    )
    box.systemctl("start", unit, check=True)
    deadline = time.monotonic() + 10
    while "uid 0" not in box.journal(unit) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert "uid 0" in box.journal(unit)  # root indeed
    assert "no Restart=: if it dies it stays down" in said_here
    box.systemctl("kill", "-s", "KILL", unit, check=True)
    assert box.wait_for(unit, ["failed"]) == "failed"
    time.sleep(1)
    assert (show(box, unit, "ActiveState"), show(box, unit, "NRestarts")) == ("failed", "0")


def test_no_restart_is_info_and_not_fixable_where_deliberate(lint: dict[str, Any]) -> None:
    for unit in ("quantum-emergency-exit-worker.service", "quantum-lint-killswitch.service"):
        assert (lint[unit]["severity"], lint[unit]["cause"], lint[unit]["fixable"]) == (
            "info",
            "no-restart",
            False,
        )
    assert (
        "fleet.protected ('quantum-emergency-exit*')"
        in lint["quantum-emergency-exit-worker.service"]["message"]
    )
    assert "quantum-lint-oneshot.service" not in lint  # a oneshot is meant to exit
    bare = lint["quantum-lint-bare.service"]
    assert (bare["severity"], bare["fixable"]) == ("warning", True)


def test_an_optional_working_directory_that_is_missing_is_no_finding(
    box: Sandbox, lint: dict[str, Any]
) -> None:
    unit = "quantum-lint-chdir-optional.service"
    box.systemctl("start", unit, check=True)  # `-`: systemd starts it in / instead
    assert box.wait_for(unit, ["active"]) == "active"
    assert unit not in lint
