"""`qtctl fleet`: two hosts (two systemd sandboxes, each its own UTS and network namespace)
publish their reports into one Redis through a unix socket bind-mounted into both; the operator's
`qtctl fleet` on a third place reads them back."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from qtctl.sandbox import Sandbox, SandboxSpec
from tests.conftest import run_cli
from tests.support.redis_server import RedisServer, start_redis

PRODUCER = """import redis
r = redis.Redis()
r.xadd("quantum:stream:trade.closed", {"symbol": "BTCUSDT"})
"""
CONSUMER = """import redis
r = redis.Redis()
r.xreadgroup("quantum:group:rl:trade.closed", "rl-1", {"quantum:stream:trade.closed": ">"})
"""


@pytest.fixture
def shared_redis(tmp_path: Path) -> Iterator[tuple[RedisServer, Path]]:
    """A redis-server on the host with a unix socket in a folder both boxes see."""
    folder = tmp_path / "redis-sock"
    folder.mkdir()
    sock = folder / "redis.sock"
    server = start_redis(extra=("--unixsocket", str(sock), "--unixsocketperm", "777"))
    deadline = time.monotonic() + 5
    while not sock.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    yield server, sock
    server.stop()


def _box(sandbox: Callable[[SandboxSpec], Sandbox], folder: Path, name: str, code: str) -> Sandbox:
    files = {f"/home/qt/quantum_trader/services/{name}.py": code}
    box = sandbox(SandboxSpec(files=files, binds=[str(folder)]))
    box.run("hostname", name, check=True)
    return box


def _publish(box: Sandbox, sock: Path, period: float) -> None:
    config = f"[report]\nperiod_sec = {period}\n"
    box.write("/etc/qtctl/fleet.toml", config)
    res = box.qtctl(
        "report",
        "--redis-publish",
        "--redis-url",
        f"unix://{sock}",
        "--select",
        "QT4",
        "--exit-zero",
        "--config",
        "/etc/qtctl/fleet.toml",
    )
    assert res.returncode == 0, res.stderr
    assert "not published" not in res.stderr, res.stderr


@pytest.mark.sandbox
@pytest.mark.redis
def test_two_hosts_in_one_view_with_a_stale_host_and_a_shared_stream(
    sandbox: Callable[[SandboxSpec], Sandbox], shared_redis: tuple[RedisServer, Path]
) -> None:
    server, sock = shared_redis
    client = redis.Redis(port=server.port)
    client.xadd("quantum:stream:trade.closed", {"symbol": "BTCUSDT"})
    client.xgroup_create("quantum:stream:trade.closed", "quantum:group:rl:trade.closed", id="0")
    box_a = _box(sandbox, sock.parent, "host-a", PRODUCER)
    box_b = _box(sandbox, sock.parent, "host-b", CONSUMER)
    _publish(box_a, sock, period=300)
    _publish(box_b, sock, period=1)  # host-b's timer "runs every second" and then stops
    time.sleep(3.5)

    res = run_cli("fleet", "--format", "json", "--redis-url", server.url)
    assert res.returncode == 1, res.stderr  # a stale host is an incident
    doc = json.loads(res.stdout)
    assert doc["schema"] == "qtctl.fleet/1"
    hosts = {h["host"]: h for h in doc["hosts"]}
    assert set(hosts) == {"host-a", "host-b"}
    assert hosts["host-a"]["stale"] is False and hosts["host-a"]["age_sec"] < 60
    assert hosts["host-b"]["stale"] is True and hosts["host-b"]["period_sec"] == 1
    assert [(i["host"], i["root"]) for i in doc["incidents"]] == [("host-b", "host-report-stale")]
    shared = {s["name"]: s for s in doc["shared_streams"]}
    trade = shared["trade.closed"]
    assert trade["writers"] == ["host-a"] and trade["readers"] == ["host-b"]
    assert [g["name"] for g in trade["groups"]] == ["quantum:group:rl:trade.closed"]

    table = run_cli("fleet", "--redis-url", server.url)
    assert table.returncode == 1
    lines = table.stdout.splitlines()
    assert any("host-b" in line and "stale" in line for line in lines), table.stdout
    assert any("trade.closed" in line and "host-a" in line for line in lines), table.stdout


@pytest.mark.redis
def test_fresh_hosts_exit_0_and_an_empty_redis_says_so(redis_server: RedisServer) -> None:
    empty = run_cli("fleet", "--redis-url", redis_server.url)
    assert empty.returncode == 0, empty.stderr
    assert "no host has published" in empty.stdout
    client = redis.Redis(port=redis_server.port)
    _plant(client, "ok-host", {"status": "ok", "generated_at": time.time(), "period_sec": 300})
    res = run_cli("fleet", "--format", "json", "--redis-url", redis_server.url)
    assert res.returncode == 0, res.stdout
    assert json.loads(res.stdout)["incidents"] == []


@pytest.mark.redis
def test_hostile_records_are_reported_not_trusted(redis_server: RedisServer) -> None:
    """Anyone who can write that Redis can plant records: bad JSON, a huge record, Rich markup
    and terminal escapes in a host name. Each is shown escaped and counted as unreadable."""
    client = redis.Redis(port=redis_server.port)
    now = time.time()
    client.zadd("quantum:qtctl:health:hosts", {"bad-json": now, "no-record": now})
    client.hset("quantum:qtctl:health:host:bad-json", "record", b"{not json")
    client.zadd("quantum:qtctl:health:hosts", {"huge": now})
    client.hset("quantum:qtctl:health:host:huge", "record", b"[" + b"1," * (1 << 20) + b"1]")
    evil = "[red]evil[/red]\x1b[2J"
    _plant(client, evil, {"status": "critical", "generated_at": "soon", "period_sec": -5})
    res = run_cli("fleet", "--redis-url", redis_server.url)
    assert res.returncode == 1
    assert "Traceback" not in res.stderr
    assert "\x1b" not in res.stdout and "[red]evil[/red]" in res.stdout
    doc = json.loads(run_cli("fleet", "-f", "json", "--redis-url", redis_server.url).stdout)
    problems = {h["host"]: h["problem"] for h in doc["hosts"]}
    assert "not valid JSON" in problems["bad-json"]
    assert "missing" in problems["no-record"]
    assert "bytes" in problems["huge"]
    evil_host = next(h for h in doc["hosts"] if h["host"] == evil)
    assert evil_host["period_sec"] == 1.0  # a negative period is clamped, never trusted


def test_fleet_refuses_a_format_it_cannot_render() -> None:
    res = run_cli("fleet", "--format", "markdown", "--redis-url", "redis://127.0.0.1:1/0")
    assert res.returncode == 2
    assert res.stderr.count("\n") == 1 and "table or json" in res.stderr


def _plant(client: redis.Redis, host: str, fields: dict[str, object]) -> None:
    record = {"schema": "qtctl.host/1", "host": host, "summary": {}, "incidents": [], **fields}
    client.hset(f"quantum:qtctl:health:host:{host}", "record", json.dumps(record))
    client.zadd("quantum:qtctl:health:hosts", {host: time.time()})


def test_an_unreachable_redis_is_one_line_and_exit_3() -> None:
    res = run_cli("fleet", "--redis-url", "redis://127.0.0.1:1/0")
    assert res.returncode == 3
    assert res.stderr.startswith("qtctl: error: cannot read the fleet's reports: cannot connect")
    assert res.stderr.count("\n") == 1 and "Traceback" not in res.stderr
