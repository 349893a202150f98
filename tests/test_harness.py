"""The test harness itself works against the real things: a redis-server and a systemd sandbox."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
import redis
from pystemd.dbuslib import DBusAddress
from pystemd.systemd1 import Unit

from qtctl.sandbox import Sandbox, SandboxSpec
from tests.support.redis_server import RedisServer

TRACEBACK_SERVICE = """\
[Unit]
Description=a service that dies with a traceback

[Service]
ExecStart=/usr/bin/python3 /opt/quantum/app/main.py
"""
MAIN = "import ai_engine.risk_kernel_stops\n"


def test_redis_fixture_round_trips_a_stream(redis_server: RedisServer) -> None:
    client = redis.Redis.from_url(redis_server.url, decode_responses=True)
    entry_id = client.xadd("quantum:stream:trade.closed", {"symbol": "BTCUSDT", "side": "LONG"})
    [(read_id, fields)] = client.xrange("quantum:stream:trade.closed")
    assert read_id == entry_id
    assert fields == {"symbol": "BTCUSDT", "side": "LONG"}
    pid = redis_server.proc.pid
    redis_server.stop()
    assert not Path(f"/proc/{pid}").exists()


def test_redis_fixture_with_aof_and_password(redis_factory: object) -> None:
    server = redis_factory(aof=True, password="pw")  # type: ignore[operator]
    client = redis.Redis(port=server.port, password="pw", decode_responses=True)
    assert client.config_get("appendonly") == {"appendonly": "yes"}
    with pytest.raises(redis.AuthenticationError):
        redis.Redis(port=server.port, password="wrong").ping()


@pytest.mark.sandbox
def test_failed_unit_seen_over_dbus_and_traceback_in_journal(sandbox: object) -> None:
    spec = SandboxSpec(
        units={"quantum-risk-proposal.service": TRACEBACK_SERVICE},
        files={"/opt/quantum/app/main.py": MAIN},
        wants=["quantum-risk-proposal.service"],
    )
    box: Sandbox = sandbox(spec)  # type: ignore[operator]
    assert box.wait_for("quantum-risk-proposal.service", ["failed"]) == "failed"
    with DBusAddress(box.bus_address.encode()) as bus:
        unit = Unit(b"quantum-risk-proposal.service", bus=bus)
        unit.load()
        assert unit.Unit.ActiveState == b"failed"
        assert unit.Service.Result == b"exit-code"
        assert unit.Service.ExecMainStatus == 1
    journal = box.journal("quantum-risk-proposal.service")
    assert "Traceback (most recent call last):" in journal
    assert "ModuleNotFoundError: No module named 'ai_engine'" in journal


@pytest.mark.sandbox
def test_sandbox_never_touches_the_host(sandbox: object, tmp_path: Path) -> None:
    marker = Path("/tmp") / f"qtctl-host-marker-{os.getpid()}"
    marker.write_text("host")
    try:
        box: Sandbox = sandbox(SandboxSpec(files={"/etc/qtctl-box-only": "box"}))  # type: ignore[operator]
        assert box.run("cat", "/etc/qtctl-box-only").stdout == "box"
        assert not Path("/etc/qtctl-box-only").exists()
        assert box.run("test", "-e", str(marker)).returncode == 1  # the box has its own /tmp
        box.run("touch", "/tmp/from-box", "/var/from-box")
        assert not Path("/tmp/from-box").exists() and not Path("/var/from-box").exists()
        assert box.run("cat", "/proc/1/comm").stdout.strip() == "systemd"
        pid = box.pid
        box.close()
        deadline = time.monotonic() + 5
        while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert not Path(f"/proc/{pid}").exists()
        assert marker.read_text() == "host"
    finally:
        marker.unlink()


@pytest.mark.sandbox
def test_sandbox_is_torn_down_when_the_test_body_fails() -> None:
    box = Sandbox(SandboxSpec())
    with pytest.raises(RuntimeError), box:
        pid = box.pid
        raise RuntimeError("test failure")
    time.sleep(0.2)
    assert not Path(f"/proc/{pid}").exists()
    box.close()  # idempotent


@pytest.mark.sandbox
def test_boot_failure_is_a_clear_error() -> None:
    from qtctl.errors import SandboxError

    box = Sandbox(SandboxSpec(files={"/proc/cannot-write-here": "x"}))
    with pytest.raises(SandboxError, match=r"exited during boot|did not"):
        box.boot(timeout=10)
    assert box.pid == 0


@pytest.mark.sandbox
def test_qtctl_runs_inside_the_box(sandbox: object, tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "hello").write_text("from the host")
    box: Sandbox = sandbox(SandboxSpec(binds=[str(shared)]))  # type: ignore[operator]
    assert box.run("cat", str(shared / "hello")).stdout == "from the host"
    assert box.run("touch", str(shared / "x")).returncode != 0  # read-only
    res = box.qtctl("--format", "json", "doctor", "--select", "QT100")
    assert res.returncode == 0, res.stderr
    assert '"status": "ok"' in res.stdout  # systemd is PID 1 in there and answers on D-Bus


@pytest.mark.sandbox
def test_entering_a_booted_sandbox_does_not_boot_a_second_systemd() -> None:
    from qtctl.errors import SandboxError

    box = Sandbox(SandboxSpec(dbus=False)).boot()
    first, unshare = box.pid, box._proc.pid if box._proc else 0
    with box as entered:  # as in `with Sandbox(spec).boot() as box:`
        assert entered is box and box.pid == first
        assert box._proc is not None and box._proc.pid == unshare
        children = Path(f"/proc/{unshare}/task/{unshare}/children").read_text().split()
        assert children == [str(first)]  # one systemd: the one boot() started
        with pytest.raises(SandboxError, match="already booted"):
            box.boot()
        assert box.pid == first
    deadline = time.monotonic() + 5
    while Path(f"/proc/{first}").exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not Path(f"/proc/{first}").exists() and box.pid == 0
