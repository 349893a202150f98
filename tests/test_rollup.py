"""One screen on a big fleet: ~165 units and ~400 findings fit the default doctor table and the
fix preview in 200 lines each, the first 25 lines say what is wrong and what to do first, and
`-v` and JSON still carry every finding. The test fleet's broken units are part of it: each of
their planted roots leads exactly one incident, and no linked failure is left orphaned."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from qtctl.sandbox import BoxFile, Sandbox, SandboxSpec
from tests.support import fleet
from tests.test_incidents_fleet import chains, orphans
from tests.test_systemd_units import settle

pytestmark = [pytest.mark.sandbox, pytest.mark.slow]
ROOT = "/home/qt/quantum_trader"
CRLF = "#!/bin/bash\r\nsleep 3600\r\n"
NEEDS_REDIS = "import redis\n"
SLEEPER = "import time\ntime.sleep(3600)\n"
COUNTS = {"crlf": 60, "no-redis": 20, "workdir": 33, "requires": 14, "sleeper": 23}


def _unit(exec_start: str, service: str = "", unit: str = "") -> str:
    return (
        f"[Unit]\nDescription=big fleet\n{unit}\n[Service]\nExecStart={exec_start}\n"
        f"{service}\n[Install]\nWantedBy=multi-user.target\n"
    )


def big_spec() -> SandboxSpec:
    """150 units in five kinds of trouble, and 150 CRLF sources in the code tree."""
    units: dict[str, str] = {}
    files: dict[str, BoxFile | str | bytes] = {}
    for i in range(COUNTS["crlf"]):
        script = f"{ROOT}/scripts/watch_{i:03d}.sh"
        files[script] = BoxFile(CRLF, 0o755)
        units[f"quantum-watch-{i:03d}.service"] = _unit(script)
    for i in range(COUNTS["no-redis"]):
        units[f"quantum-feed-{i:03d}.service"] = _unit(
            f"/usr/bin/python3 {ROOT}/microservices/feed/main.py"
        )
    for i in range(COUNTS["workdir"]):
        units[f"quantum-svc-{i:03d}.service"] = _unit(
            f"/usr/bin/python3 {ROOT}/microservices/sleeper/main.py",
            f"WorkingDirectory=/opt/quantum/microservices/svc_{i:03d}\n",
        )
    for i in range(COUNTS["requires"]):
        units[f"quantum-pos-{i:03d}.service"] = _unit(
            f"/usr/bin/python3 {ROOT}/microservices/sleeper/main.py",
            "Restart=on-failure\n",
            "Requires=quantum-redis.service\nAfter=quantum-redis.service",
        )
    for i in range(COUNTS["sleeper"]):
        units[f"quantum-idle-{i:03d}.service"] = _unit(
            f"/usr/bin/python3 {ROOT}/microservices/sleeper/main.py"
        )
    for i in range(150):
        files[f"{ROOT}/lib/mod_{i:03d}.py"] = "x = 1\r\n"
    units.update(fleet.broken_units())
    files.update(fleet.files())
    files[f"{ROOT}/microservices/feed/main.py"] = NEEDS_REDIS
    files[f"{ROOT}/microservices/sleeper/main.py"] = SLEEPER
    etc = "/etc/systemd/system"
    links = {f"{etc}/multi-user.target.wants/{n}": f"{etc}/{n}" for n in units}  # enabled
    return SandboxSpec(units=units, files=files, symlinks=links, wants=sorted(units))


@pytest.fixture(scope="module")
def big() -> Iterator[Sandbox]:
    with Sandbox(big_spec()).boot(timeout=90) as box:  # 150 units boot slowly on a busy host
        failing = [u for u in box.spec.units if u.startswith(("quantum-watch", "quantum-svc"))]
        for unit in failing[:: len(failing) // 5]:
            box.wait_for(unit, ["failed"])
        settle(box, timeout=90)  # the test fleet's planted faults have all happened
        yield box


@pytest.fixture(scope="module")
def doc(big: Sandbox) -> dict[str, Any]:
    res = big.qtctl("--format", "json", "doctor")
    assert res.returncode == 1, res.stderr[-2000:]
    return json.loads(res.stdout)  # type: ignore[no-any-return]


def test_the_test_fleet_s_planted_roots_each_lead_one_incident(doc: dict[str, Any]) -> None:
    found = chains(doc)
    rp, exit_watch = "quantum-risk-proposal.service", "quantum-exit-watch.service"
    assert found[("QT201", rp)] == {("QT101", rp)}
    assert found[("QT301", exit_watch)] == {("QT101", exit_watch)}
    for root, unit in (
        ("QT104", "quantum-bad-user.service"),
        ("QT706", "quantum-memory-hog.service"),
        ("QT104", "quantum-signal-loop.service"),  # StartLimit*= in [Service]
        ("QT104", "quantum-feature-publisher.service"),  # ExecStart= program missing
    ):
        assert found[(root, unit)] == {("QT101", unit)}
    pos = {("QT104", f"quantum-pos-{i:03d}.service") for i in range(COUNTS["requires"])}
    monitor = {("QT104", "quantum-position-monitor.service")}
    assert pos | monitor <= found[("QT102", "quantum-redis.service")]
    # they fail on 127.0.0.1:6399, not on the fleet's Redis that doctor finds down: no link
    assert ("QT400", "redis") not in found
    assert orphans(doc) == []


def test_unrelated_failures_stay_out_of_incidents(doc: dict[str, Any]) -> None:
    members = {i for incident in doc["incidents"] for i in incident["chain"]}
    loader = [f for f in doc["findings"] if f["subject"] == "quantum-model-loader.service"]
    assert loader and not [f for f in loader if f["code"] == "QT101" and f["id"] in members]


def test_the_doctor_table_fits_one_screen(big: Sandbox, doc: dict[str, Any]) -> None:
    assert len(doc["findings"]) >= 350
    res = big.qtctl("doctor")
    assert res.returncode == 1, res.stderr[-2000:]
    lines = res.stdout.splitlines()
    assert len(lines) <= 200, "\n".join(lines)
    top = "\n".join(lines[:25])
    assert "incident(s)" in top and "fix first:" in top
    assert "QT301" in top and "60 roots" not in top  # CRLF incidents rolled into one entry
    verbose = big.qtctl("-v", "doctor").stdout
    assert len(verbose.splitlines()) > 4 * len(lines)
    for unit in big.spec.units:
        assert unit in verbose or unit.replace("\\", "\\\\") in verbose, unit


def test_the_fix_preview_fits_one_screen(big: Sandbox) -> None:
    res = big.qtctl("fix")
    lines = res.stdout.splitlines()
    assert len(lines) <= 200, "\n".join(lines)
    assert "runnable" in lines[1] and "held" in lines[1]
    full = json.loads(big.qtctl("--format", "json", "fix").stdout)
    assert len(full["repairs"]) >= 100
