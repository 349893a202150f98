"""`qtctl fix` on a real systemd: preview, safety rules, apply, verification, idempotence, undo."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator

import pytest

from qtctl.sandbox import BoxFile, Sandbox
from tests.support.fleet import DISABLED, LEGACY, fleet_spec
from tests.test_systemd_units import settle

pytestmark = pytest.mark.sandbox
ETC = "/etc/systemd/system"
LEGACY_LINK = f"{ETC}/multi-user.target.wants/{LEGACY}"
TEST_REDIS = "[Service]\nExecStart=/usr/bin/redis-server --port 6399 --save '' --appendonly no\n"


@pytest.fixture
def fleet() -> Iterator[Sandbox]:
    spec = fleet_spec()
    units = {**spec.units, "quantum-test-redis.service": TEST_REDIS}
    spec = type(spec)(units=units, files=spec.files, symlinks=spec.symlinks, wants=spec.wants)
    with Sandbox(spec) as box:
        settle(box)
        yield box


def fix(box: Sandbox, *args: str) -> dict[str, dict[str, object]]:
    res = box.qtctl("--format", "json", "fix", "--select", "QT101,QT102,QT103", *args)
    assert res.returncode in (0, 1), res.stderr
    doc = json.loads(res.stdout)
    assert doc["schema"] == "qtctl.fix/1"
    return {r["subject"]: r for r in doc["repairs"]} | {"": {"record": doc["record"]}}


def findings(box: Sandbox) -> dict[str, str]:
    res = box.qtctl("--format", "json", "doctor", "--select", "QT101,QT102,QT103")
    return {f["subject"]: f["cause"] for f in json.loads(res.stdout)["findings"]}


def test_preview_changes_nothing_and_says_what_and_why(fleet: Sandbox) -> None:
    plan = fix(fleet)
    assert plan[""]["record"] is None
    assert plan[LEGACY]["actions"] == [
        f"rm {LEGACY_LINK}    # dangling -> {ETC}/{LEGACY}",
        "systemctl daemon-reload",
    ]
    consumer = plan["quantum-stream-consumer.service"]
    assert consumer["actions"] == [
        "systemctl reset-failed quantum-stream-consumer.service",
        "systemctl restart quantum-stream-consumer.service",
    ]
    assert consumer["held"] == "restarting a service needs --unsafe"
    assert "protected unit" in str(plan["quantum-execution.service"]["held"])
    assert "never starts a disabled unit" in str(plan[DISABLED]["held"])
    assert "still has CRLF" in str(plan["quantum-exit-watch.service"]["held"])
    assert "root cause first" in str(plan["quantum-risk-proposal.service"]["held"])
    assert "quantum-apply-layer.service" not in plan  # masked: never touched
    assert os.path.islink(fleet.host_path(LEGACY_LINK))


def test_apply_repairs_verifies_and_is_idempotent_and_undoable(fleet: Sandbox) -> None:
    fleet.systemctl("start", "quantum-test-redis.service", check=True)  # the transient cause ends
    first = fix(fleet, "--apply")
    assert first[LEGACY]["result"] == "fixed"
    assert not os.path.lexists(fleet.host_path(LEGACY_LINK))
    assert first["quantum-stream-consumer.service"]["result"] == "held"  # no --unsafe yet

    second = fix(fleet, "--apply", "--unsafe")
    assert second["quantum-stream-consumer.service"]["result"] == "fixed"
    assert fleet.systemctl("is-active", "quantum-stream-consumer.service").stdout.strip() == (
        "active"
    )
    hog = second["quantum-memory-hog.service"]
    assert hog["result"] == "still-failing"  # restarted, OOM-killed again: said honestly
    assert "OOM killer" in str(hog["after"]["message"])  # type: ignore[index]
    for held in ("quantum-execution.service", DISABLED, "quantum-exit-watch.service"):
        assert second[held]["result"] == "held"
        assert fleet.systemctl("is-active", held).stdout.strip() == "failed"
    assert fleet.systemctl("is-active", "quantum-apply-layer.service").stdout.strip() == (
        "inactive"
    )

    remaining = findings(fleet)
    assert LEGACY not in remaining and "quantum-stream-consumer.service" not in remaining

    third = fix(fleet, "--apply", "--unsafe")
    assert "failed again" in str(third["quantum-memory-hog.service"]["held"])
    assert third[""]["record"] is None  # nothing left to run: the same fix changes nothing

    res = fleet.qtctl("fix", "--undo", str(first[""]["record"]))
    assert res.returncode == 0, res.stderr
    assert "restore-link" in res.stdout
    assert os.readlink(fleet.host_path(LEGACY_LINK)) == f"{ETC}/{LEGACY}"
    assert findings(fleet)[LEGACY] == "not-found"


def test_root_cause_fixed_then_restart_brings_it_back(fleet: Sandbox) -> None:
    plan = fix(fleet, "--unsafe")
    assert "still missing" in str(plan["quantum-feature-publisher.service"]["held"])
    fleet.write("/opt/quantum/bin/feature-publisher", "#!/bin/sh\nexec sleep 3600\n", 0o755)
    done = fix(fleet, "--apply", "--unsafe")
    assert done["quantum-feature-publisher.service"]["result"] == "fixed"
    assert "quantum-feature-publisher.service" not in findings(fleet)


def test_live_mode_requires_naming_each_unit(fleet: Sandbox) -> None:
    fleet.write("/etc/quantum/trading.env", "TRADING_MODE=live\n")
    fleet.write(
        f"{ETC}/quantum-svc-00.service.d/env.conf",
        "[Service]\nEnvironmentFile=/etc/quantum/trading.env\n",
    )
    fleet.systemctl("daemon-reload", check=True)
    fleet.systemctl("start", "quantum-test-redis.service", check=True)
    plan = fix(fleet, "--unsafe")
    held = str(plan["quantum-stream-consumer.service"]["held"])
    assert held.startswith("live mode: name the unit to restart it")
    assert "TRADING_MODE=live" in held
    done = fix(fleet, "--apply", "--unsafe", "--only", "quantum-stream-consumer.service")
    assert done["quantum-stream-consumer.service"]["result"] == "fixed"
    assert done["quantum-memory-hog.service"]["result"] == "held"


def test_fix_journal_survives_a_damaged_record(fleet: Sandbox) -> None:
    fleet.write("/var/lib/qtctl/fixes/00000000T000000Z-dead.json", BoxFile("{not json").content)
    plan = fix(fleet)
    assert plan[LEGACY]["actions"]
