"""On failure, at once: `qtctl install --on-failure` in a real systemd, a fleet unit fails,
systemd starts `qtctl-notify@<unit>.service` through `OnFailure=`, and the incident lands in
Redis (the box reaches the test's redis-server through a bind-mounted unix socket) and in the
journal; `qtctl fix --undo` takes the drop-ins back."""

from __future__ import annotations

import json
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from qtctl.sandbox import Sandbox, SandboxSpec
from tests.conftest import REPO
from tests.support.redis_server import RedisServer, start_redis

pytestmark = [pytest.mark.sandbox, pytest.mark.redis]
CODE = "/home/qt/quantum_trader"
CRASHY = "quantum-crashy.service"
HEALTHY = "quantum-ok.service"
EMERGENCY = "quantum-emergency-exit-worker.service"
STREAM = "quantum:stream:qtctl.incidents"


def _unit(command: str) -> str:
    return f"[Unit]\nDescription=test\n[Service]\nExecStart={command}\nRestart=no\n"


@pytest.fixture
def box_and_redis() -> Iterator[tuple[Sandbox, redis.Redis]]:
    # not under /tmp: the notifier runs with PrivateTmp=yes, as an operator's Redis socket must
    # not be there either (docs/fleet.md)
    (REPO / "build").mkdir(exist_ok=True)  # ignored by git: absent in a fresh clone
    folder = Path(tempfile.mkdtemp(prefix="onfailure-", dir=REPO / "build"))
    sock = folder / "redis.sock"
    server: RedisServer = start_redis(extra=("--unixsocket", str(sock), "--unixsocketperm", "777"))
    config = f'[redis]\nurl = "unix://{sock}"\n[fleet]\ncode_roots = ["{CODE}"]\n'
    spec = SandboxSpec(
        units={
            CRASHY: _unit(f"/usr/bin/python3 {CODE}/crashy/main.py"),
            HEALTHY: _unit("/bin/sleep 3600"),
            EMERGENCY: _unit("/bin/sleep 3600"),
        },
        files={
            f"{CODE}/crashy/main.py": "import quantum_missing_helpers\n",
            "/etc/qtctl/qtctl.toml": config,
        },
        wants=[HEALTHY, EMERGENCY],
        binds=[str(folder)],
    )
    box = Sandbox(spec).boot()
    try:
        yield box, redis.Redis(unix_socket_path=str(sock))
    finally:
        box.close()
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)


def test_a_failed_unit_publishes_its_incident_and_the_drop_ins_undo(
    box_and_redis: tuple[Sandbox, redis.Redis],
) -> None:
    box, client = box_and_redis
    res = box.qtctl("install", "--on-failure", "--daemon-config", "/etc/qtctl/qtctl.toml")
    assert res.returncode == 0, res.stderr + res.stdout
    assert f"{EMERGENCY}: skipped (protected unit" in res.stdout
    record = re.search(r"qtctl fix --undo (\S+)`", res.stdout)
    assert record, res.stdout
    shown = box.systemctl("show", "-p", "OnFailure", "--value", HEALTHY).stdout.strip()
    assert shown == f"qtctl-notify@{HEALTHY}.service"
    assert box.systemctl("show", "-p", "OnFailure", "--value", EMERGENCY).stdout.strip() == ""

    box.systemctl("start", CRASHY)
    notifier = f"qtctl-notify@{CRASHY}.service"
    entry = _wait_for_incident(client, lambda: box.journal(notifier) + box.journal(CRASHY))
    assert entry["unit"] == CRASHY
    assert entry["result"] == "exit-code" and entry["exit_status"] == "1"
    assert re.fullmatch(r"[0-9a-f]{32}", entry["invocation_id"])
    assert entry["root_code"] in {"QT101", "QT201"}, entry
    report = json.loads(entry["report"])
    subjects = {f["subject"] for f in report["findings"]}
    assert CRASHY in subjects and HEALTHY not in subjects  # only what is about that unit
    assert "ModuleNotFoundError" in entry["report"] or "quantum_missing_helpers" in entry["report"]
    journal = box.journal(f"qtctl-notify@{CRASHY}.service")
    assert f"incident on {CRASHY} (exit-code, status 1)" in journal, journal

    undo = box.qtctl("fix", "--undo", record.group(1))
    assert undo.returncode == 0, undo.stderr + undo.stdout
    assert box.systemctl("show", "-p", "OnFailure", "--value", HEALTHY).stdout.strip() == ""
    assert not box.host_path(f"/etc/systemd/system/{HEALTHY}.d/50-qtctl-on-failure.conf").exists()


def test_publish_incident_needs_a_unit(box_and_redis: tuple[Sandbox, redis.Redis]) -> None:
    box, _client = box_and_redis
    res = box.qtctl("doctor", "--publish-incident")
    assert res.returncode == 2
    assert "--publish-incident needs --unit NAME" in res.stderr


def _wait_for_incident(
    client: redis.Redis, journal: Callable[[], str], timeout: float = 90.0
) -> dict[str, str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        entries = client.xrange(STREAM)
        if entries:
            return {k.decode(): v.decode() for k, v in entries[-1][1].items()}
        time.sleep(0.3)
    raise AssertionError(f"no incident published within the timeout:\n{journal()}")
