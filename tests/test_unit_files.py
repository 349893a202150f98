"""QT104-QT106 on a real systemd: unit-file mistakes, inventory drift, drift from the code roots."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator

import pytest

from qtctl.sandbox import Sandbox, SandboxSpec
from tests.support.fleet import fleet_spec
from tests.test_systemd_units import settle

pytestmark = pytest.mark.sandbox
ETC = "/etc/systemd/system"
Boot = Callable[[SandboxSpec], Sandbox]


@pytest.fixture(scope="module")
def report() -> Iterator[dict[tuple[str, str], dict[str, object]]]:
    with Sandbox(fleet_spec()) as box:
        res = box.qtctl("--format", "json", "doctor", "--select", "QT104,QT105,QT106")
        assert res.returncode == 1, res.stderr
        yield {(f["code"], f["subject"]): f for f in json.loads(res.stdout)["findings"]}


def kinds(finding: dict[str, object]) -> set[str]:
    return set(str(finding["cause"]).split(","))


def test_mistakes_verify_misses_are_explained(report: dict) -> None:
    demo = report[("QT104", "quantum-lint-demo.service")]
    assert demo["severity"] == "error"
    assert kinds(demo) == {
        "wrong-section",
        "inline-comment",
        "pythonpath",
        "deprecated",
        "dependency-aliases",
    }
    path = f"{ETC}/quantum-lint-demo.service"
    assert demo["detail"] == [
        f"{path}:10: StartLimitIntervalSec= belongs in [Unit], not [Service]: systemd ignores "
        "it there",
        f"{path}:12: MemoryMax='16G # raised for the backfill': systemd has no inline comments; "
        "the value is invalid or carries the comment as data",
        "PYTHONPATH entry /opt/quantum/missing-lib does not exist",
        f"{path}:11: MemoryLimit= is deprecated: use MemoryMax=",
        "redis-server.service is named 2 ways: redis-server.service, redis.service",
    ]


def test_broken_and_stray_drop_ins(report: dict) -> None:
    finding = report[("QT104", "quantum-no-restart.service")]
    assert kinds(finding) == {"broken-drop-in", "no-restart"}
    assert finding["fixable"] is True
    detail = "\n".join(finding["detail"])  # type: ignore[arg-type]
    assert "override.conf:1: Restart= outside any [Section]: systemd ignores it" in detail
    assert "notes.txt: drop-in does not end in .conf" in detail


def test_requires_on_a_missing_unit_and_verify_errors(report: dict) -> None:
    monitor = report[("QT104", "quantum-position-monitor.service")]
    assert "Requires=quantum-redis.service, which does not exist" in str(monitor["message"])
    publisher = report[("QT104", "quantum-feature-publisher.service")]
    assert "feature-publisher is not executable" in str(publisher["message"])
    assert "verify" in kinds(publisher)
    signal = report[("QT104", "quantum-signal-loop.service")]
    assert "wrong-section" in kinds(signal) and "verify" not in kinds(signal)  # deduplicated


def test_python_as_root_and_missing_limits(report: dict) -> None:
    hog = report[("QT104", "quantum-memory-hog.service")]
    assert kinds(hog) == {"no-restart", "python-as-root", "no-limits"}
    assert "no CPUQuota=" in "\n".join(hog["detail"])


def test_healthy_units_are_clean(report: dict) -> None:
    flagged = {subject for code, subject in report if subject.startswith("quantum-svc-")}
    assert flagged == set()


def test_unit_drift_from_the_code_roots(report: dict) -> None:
    drift = report[("QT106", "quantum-lint-demo.service")]
    assert drift["severity"] == "warning"
    detail = drift["detail"]
    assert detail[0] == f"installed: {ETC}/quantum-lint-demo.service"
    assert "  +MemoryMax=16G # raised for the backfill" in detail
    assert "/home/qt/quantum_trader/ops/old/quantum-lint-demo.service: 1 line(s) differ" in detail
    assert ("QT106", "quantum-svc-00.service") not in report  # its copy matches
    uncovered = report[("QT106", "code roots")]
    assert uncovered["severity"] == "info"
    assert "quantum-svc-01.service" in uncovered["detail"]  # the .venv copy is not a copy


def test_no_inventory_means_no_qt105(report: dict) -> None:
    assert not [key for key in report if key[0] == "QT105"]


SMALL = {
    f"quantum-svc-{i}.service": "[Service]\nExecStart=/bin/sleep 3600\nRestart=on-failure\n"
    "MemoryMax=64M\nCPUQuota=10%\n"
    for i in range(4)
}


def test_inventory_snapshot_then_drift(sandbox: Boot) -> None:
    box = sandbox(SandboxSpec(units=SMALL, wants=sorted(SMALL)))
    res = box.qtctl("doctor", "--select", "QT105", "--snapshot-inventory")
    assert res.returncode == 0, res.stdout + res.stderr
    assert "recorded 4 active fleet units" in res.stderr
    box.systemctl("stop", "quantum-svc-1.service", check=True)
    os.unlink(box.host_path(f"{ETC}/quantum-svc-2.service"))
    box.systemctl("stop", "quantum-svc-2.service", check=True)
    box.systemctl("daemon-reload", check=True)
    res = box.qtctl("--format", "json", "doctor", "--select", "QT105")
    [finding] = json.loads(res.stdout)["findings"]
    assert finding["message"] == "2 of 4 expected fleet units active; 1 missing, 1 inactive"
    assert finding["detail"][1:] == [
        "missing: quantum-svc-2.service",
        "inactive: quantum-svc-1.service (inactive)",
    ]


def test_expected_inventory_from_config(sandbox: Boot) -> None:
    box = sandbox(
        SandboxSpec(
            units=SMALL,
            wants=sorted(SMALL),
            files={
                "/etc/qtctl/qtctl.toml": "[fleet]\nexpected_units = ['quantum-svc-0.service', "
                "'quantum-gone.service']\nexpected_count = 5\n"
            },
        )
    )
    res = box.qtctl("--format", "json", "doctor", "--select", "QT105")
    [finding] = json.loads(res.stdout)["findings"]
    assert finding["message"] == "4 of 5 expected fleet units active; 1 missing, 0 inactive"


def test_fix_adds_restart_as_a_drop_in_verified_and_undoable(sandbox: Boot) -> None:
    unit = "quantum-bare.service"
    text = "[Service]\nExecStart=/bin/sleep 3600\nMemoryMax=64M\nCPUQuota=10%\n"
    box = sandbox(SandboxSpec(units={unit: text}, wants=[unit]))
    drop_in = f"{ETC}/{unit}.d/50-qtctl-restart.conf"
    res = box.qtctl("--format", "json", "fix", "--select", "QT104", "--apply")
    [repair] = json.loads(res.stdout)["repairs"]
    assert repair["result"] == "fixed", repair
    assert box.run("cat", drop_in).stdout == "[Service]\nRestart=on-failure\nRestartSec=5\n"
    assert box.systemctl("show", "-P", "Restart", unit).stdout.strip() == "on-failure"
    assert box.systemctl("is-active", unit).stdout.strip() == "active"  # not restarted
    again = box.qtctl("--format", "json", "fix", "--select", "QT104", "--apply")
    assert json.loads(again.stdout)["repairs"] == []  # idempotent: nothing left to do
    undo = box.qtctl("fix", "--undo", "LAST")
    assert undo.returncode == 0, undo.stderr
    assert box.run("test", "-e", drop_in).returncode == 1
    assert box.systemctl("show", "-P", "Restart", unit).stdout.strip() == "no"


def test_a_failed_unit_links_to_the_unit_file_mistake_behind_it() -> None:
    with Sandbox(fleet_spec()) as box:
        settle(box)
        res = box.qtctl("--format", "json", "doctor", "--select", "QT101,QT104")
    found = {(f["code"], f["subject"]): f for f in json.loads(res.stdout)["findings"]}
    assert found[("QT101", "quantum-bad-user.service")]["related"] == [
        "QT104 quantum-bad-user.service"
    ]
    assert (
        "QT101 quantum-signal-loop.service"
        in found[("QT104", "quantum-signal-loop.service")]["related"]
    )


FLAPPER = """\
import os, sys, time
path = "/run/flapper-count"
count = int(open(path).read()) if os.path.exists(path) else 0
open(path, "w").write(str(count + 1))
if count < 6:
    sys.exit(f"warming up {count}")
time.sleep(3600)
"""


def test_flapped_recently_but_running_now_is_a_warning(sandbox: Boot) -> None:
    unit = "quantum-flapper.service"
    text = (
        "[Unit]\nStartLimitIntervalSec=0\n[Service]\nExecStart=/usr/bin/python3 "
        "/opt/flapper.py\nRestart=always\nRestartSec=100ms\n"
    )
    box = sandbox(SandboxSpec(units={unit: text}, files={"/opt/flapper.py": FLAPPER}, wants=[unit]))
    deadline = time.monotonic() + 20
    while box.systemctl("show", "-P", "NRestarts", unit).stdout.strip() != "6":
        assert time.monotonic() < deadline, "flapper did not settle"
        time.sleep(0.1)
    box.run("journalctl", "--sync")
    env = {"QTCTL__SYSTEMD__FLAP_WINDOW_SEC": "3600"}
    res = box.qtctl("--format", "json", "doctor", "--select", "QT103", env=env)
    [finding] = json.loads(res.stdout)["findings"]
    assert finding["severity"] == "error"  # 6 restarts within 5 minutes: still looping
    assert "restart counter 6, 6 restart(s)" in finding["message"]
    res = box.qtctl(
        "--format",
        "json",
        "doctor",
        "--select",
        "QT103",
        env={**env, "QTCTL__SYSTEMD__RESTART_WARN": "3"},
    )
    assert json.loads(res.stdout)["findings"][0]["cause"] == "exit-code"


def test_deleted_unit_still_listed_as_failed(sandbox: Boot) -> None:
    unit = "quantum-old-exporter.service"
    box = sandbox(SandboxSpec(units={unit: "[Service]\nExecStart=/bin/false\n"}))
    box.systemctl("start", unit)  # started by hand, wanted by nothing
    box.wait_for(unit, ["failed"])
    os.unlink(box.host_path(f"{ETC}/{unit}"))
    box.systemctl("daemon-reload", check=True)
    assert unit in box.systemctl("list-units", "--state=failed").stdout
    res = box.qtctl("--format", "json", "doctor", "--select", "QT102")
    [finding] = json.loads(res.stdout)["findings"]
    assert finding["message"].endswith("still listed as failed")
    fixed = box.qtctl("--format", "json", "fix", "--select", "QT102", "--apply")
    [repair] = json.loads(fixed.stdout)["repairs"]
    assert repair["actions"] == [f"systemctl reset-failed {unit}"]
    assert repair["result"] == "fixed"
    assert unit not in box.systemctl("list-units", "--all").stdout
