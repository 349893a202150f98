"""The daemon runtime as systemd sees it: sd_notify datagrams on a real socket, SIGHUP reload,
JSON logs, and capped backoff while Redis is down; driven through `qtctl run bridge`."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from qtctl.daemon.runtime import Backoff
from tests.conftest import REPO
from tests.support.redis_server import RedisServer, free_port

SRC = "quantum:stream:execution.result"


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(tmp_path / "notify.sock"))
    sock.settimeout(0.2)
    yield sock
    sock.close()


def messages(sock: socket.socket, until: str, timeout: float = 15.0) -> list[str]:
    """Datagrams received until one contains `until`."""
    got: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            got.append(sock.recv(4096).decode())
        except TimeoutError:
            continue
        if until in got[-1]:
            return got
    raise AssertionError(f"no {until!r} in {got}")


def start(config: Path, env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "qtctl", "--config", str(config), "run", "bridge", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
        env={**os.environ, **env},
    )


def bridge_config(path: Path, url: str, extra: str = "") -> Path:
    path.write_text(
        f"[redis]\nurl = '{url}'\nsocket_timeout = 0.5\n[bridge]\nstart_id = '0'\n"
        f"allow_no_readers = ['trade.execution.result']\nblock_ms = 100\n{extra}"
    )
    return path


def test_notify_ready_status_watchdog_and_stopping(
    redis_server: RedisServer, tmp_path: Path, notify_socket: socket.socket
) -> None:
    redis.Redis(port=redis_server.port).xadd(SRC, {"i": "1"})
    config = bridge_config(tmp_path / "b.toml", redis_server.url)
    env = {
        "NOTIFY_SOCKET": notify_socket.getsockname(),
        "WATCHDOG_USEC": "1000000",
    }
    proc = start(config, env)
    seen = messages(notify_socket, "READY=1")
    assert any(m.startswith("READY=1\nSTATUS=") for m in seen)
    seen += messages(notify_socket, "WATCHDOG=1")
    seen += messages(notify_socket, "STATUS=execution.result: bridged 1")
    proc.send_signal(signal.SIGTERM)
    seen += messages(notify_socket, "STOPPING=1")
    assert proc.wait(timeout=5) == 0
    assert seen.index(next(m for m in seen if "READY=1" in m)) < seen.index(
        next(m for m in seen if "STOPPING=1" in m)
    )


def test_sighup_reloads_and_a_bad_config_is_refused_not_fatal(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    config = bridge_config(tmp_path / "b.toml", redis_server.url)
    proc = start(config, {}, "--log-format", "json")
    time.sleep(1.5)
    proc.send_signal(signal.SIGHUP)
    time.sleep(0.5)
    config.write_text(config.read_text() + "batch_max = 'lots'\n")
    proc.send_signal(signal.SIGHUP)
    time.sleep(0.5)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=5)
    assert proc.returncode == 0
    logs = [json.loads(line) for line in err.splitlines()]
    text = [(e["level"], e["message"]) for e in logs]
    assert ("info", "bridge: config reloaded") in text
    refused = [m for level, m in text if level == "error" and "reload refused" in m]
    assert refused and "bridge.batch_max: expected int, got 'lots'" in refused[0]
    assert all(set(e) >= {"level", "logger", "message"} for e in logs)


def test_redis_down_backs_off_with_capped_delays_then_stops_on_sigterm(tmp_path: Path) -> None:
    config = bridge_config(tmp_path / "b.toml", f"redis://127.0.0.1:{free_port()}/0")
    proc = start(config, {})
    time.sleep(2.5)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=5)
    assert proc.returncode == 0  # stopped cleanly while waiting
    attempts = [line for line in err.splitlines() if "Redis unavailable during start" in line]
    assert len(attempts) >= 2
    assert "retrying in 0." in attempts[0] and "(attempt 1)" in attempts[0]
    assert "(attempt 2)" in attempts[1]


def test_backoff_doubles_to_its_cap() -> None:
    backoff = Backoff(base=0.5, cap=4.0)
    delays = [backoff.next_delay() for _ in range(6)]
    for got, want in zip(delays, [0.5, 1, 2, 4, 4, 4], strict=True):
        assert want * 0.9 <= got <= want * 1.1
    backoff.reset()
    assert backoff.next_delay() <= 0.55


def _refusals(client: redis.Redis) -> list[BaseException]:
    """The same refused write as redis-py raises it and as a caller-packed pipeline returns it."""
    from qtctl.adapters import resp

    out: list[BaseException] = []
    try:
        client.xadd("k", {"f": "v"})
    except redis.ResponseError as exc:
        out.append(exc)
    out += resp.execute(client, [resp.command("XADD", "k", "*", "f", "v")])
    return out


def test_refusals_redis_lifts_by_itself_are_waited_out_and_others_are_not(
    redis_server: RedisServer,
) -> None:
    """Classified from a real server's replies: redis-py strips the code of the ones it names
    (OutOfMemoryError says only "command not allowed ..."), a raw reply keeps it."""
    from qtctl.daemon.runtime import is_transient

    client = redis.Redis(port=redis_server.port, decode_responses=True)
    client.config_set("maxmemory", "1")
    oom = _refusals(client)
    client.config_set("maxmemory", "0")
    client.replicaof("127.0.0.1", str(free_port()))  # a replica of nobody: writes are refused
    try:
        readonly = _refusals(client)
        client.config_set("replica-serve-stale-data", "no")
        with pytest.raises(redis.ResponseError) as masterdown:
            client.xlen("k")
    finally:
        client.config_set("replica-serve-stale-data", "yes")
        client.replicaof("NO", "ONE")
    client.set("s", "x")
    with pytest.raises(redis.ResponseError) as wrongtype:
        client.xadd("s", {"f": "v"})
    assert [str(e)[:4] for e in oom] == ["comm", "OOM "]
    assert [str(e)[:4] for e in readonly] == ["You ", "READ"]
    assert all(map(is_transient, [*oom, *readonly, masterdown.value]))
    assert not is_transient(wrongtype.value)
    assert not is_transient(ValueError("bad input"))
