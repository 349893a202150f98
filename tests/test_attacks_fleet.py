"""An outside attacker's findings against `qtctl fleet` and doctor's report paths
(scratch/attack-20-21.md F1, F13-F16), replayed through the CLI against a redis-server the
test started: any client of the shared Redis can write host records, so none of them may crash
the view, hide a host, or be believed without being checked."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.conftest import REPO, run_cli
from tests.support.redis_server import RedisServer

pytestmark = pytest.mark.redis
KEY = "quantum:qtctl:health"


def _fleet(server: RedisServer, *args: str) -> tuple[int, dict[str, Any]]:
    res = run_cli("fleet", "-f", "json", "--redis-url", server.url, *args)
    assert "Traceback" not in res.stderr and res.returncode in (0, 1), res.stderr
    return res.returncode, json.loads(res.stdout)


def _record(name: str, **fields: object) -> str:
    doc = {"schema": "qtctl.host/1", "host": name, "status": "ok", "generated_at": time.time()}
    return json.dumps({**doc, "period_sec": 300, "summary": {}, "incidents": [], **fields})


def _plant(client: redis.Redis, host: str | bytes, record: str, score: float = 0.0) -> None:
    name = host if isinstance(host, bytes) else host.encode()
    client.zadd(f"{KEY}:hosts", {name: score or time.time()})
    client.hset(f"{KEY}:host:".encode() + name, "record", record)


def _problems(doc: dict[str, Any]) -> dict[str, str]:
    return {h["host"]: h["problem"] for h in doc["hosts"]}


def test_hostile_host_entries_are_unreadable_hosts_not_a_crash(
    redis_server: RedisServer,
) -> None:
    """F13: a non-UTF-8 name, a host key of the wrong type, a record nested 200,000 deep
    each ended `qtctl fleet` with exit 3 (which also means 'Redis down')."""
    client = redis.Redis(port=redis_server.port)
    _plant(client, b"h\xff\xfebad", _record("x"))
    client.zadd(f"{KEY}:hosts", {"hwrongtype": time.time()})
    client.set(f"{KEY}:host:hwrongtype", "x")
    _plant(client, "hdeep", "[" * 200_000 + "]" * 200_000)
    table = run_cli("fleet", "--redis-url", redis_server.url)
    assert table.returncode == 1 and "h\\xff\\xfebad" in table.stdout, table.stderr
    code, doc = _fleet(redis_server)
    problems = _problems(doc)
    assert code == 1 and "WRONGTYPE" in problems["hwrongtype"], problems
    assert "nested too deep" in problems["hdeep"]
    assert "h\\xff\\xfebad" in problems  # shown escaped, and the record was looked up


def test_more_hosts_than_are_read_is_said_and_the_stale_end_kept(
    redis_server: RedisServer,
) -> None:
    """F14: 1,000 fresh fake records pushed the one critical, oldest host out of the view
    (exit 0, nothing said)."""
    client = redis.Redis(port=redis_server.port)
    old = time.time() - 600
    _plant(client, "vm", _record("vm", status="critical", generated_at=old), old)
    pipe = client.pipeline()
    for index in range(1000):
        host = f"bulk{index:06d}"
        pipe.zadd(f"{KEY}:hosts", {host: time.time() + 1})
        pipe.hset(f"{KEY}:host:{host}", "record", _record(host))
    pipe.execute()
    code, doc = _fleet(redis_server)
    assert code == 1 and "vm" in [h["host"] for h in doc["hosts"]]
    roots = [i["root"] for i in doc["incidents"]]
    assert roots.count("hosts-truncated") == 1, roots
    truncated = next(i for i in doc["incidents"] if i["root"] == "hosts-truncated")
    assert "1 of 1001" in truncated["message"], truncated


def test_a_record_dated_in_the_future_is_an_incident(redis_server: RedisServer) -> None:
    """F15: a record ten years ahead was '0 s' old and never went stale."""
    client = redis.Redis(port=redis_server.port)
    now = time.time()
    _plant(client, "hx", _record("hx", generated_at=now + 315_360_000), now - 100_000)
    _plant(client, "hz", _record("hz"), now + 86_400)
    code, doc = _fleet(redis_server)
    assert code == 1
    by_host = {i["host"]: i["root"] for i in doc["incidents"]}
    assert by_host["hz"] == "host-clock-ahead", doc["incidents"]
    hx = next(h for h in doc["hosts"] if h["host"] == "hx")
    assert hx["stale"] and hx["age_sec"] >= 100_000, hx  # the older date is believed


@pytest.mark.parametrize(
    "fields",
    [
        {"summary": {"error": "NaN"}},
        {"status": "[bold]ok[/bold]"},
        {"summary": {"error": "lots", "warning": -5, "info": 1e308}},
        {"incidents": [{"code": "QT101", "consequences": 99999999999}, {"root": 5}]},
        {"status": True},
        {"host": "someone-else"},
    ],
    ids=["nan", "status-markup", "counts", "incidents", "status-bool", "host-mismatch"],
)
def test_a_record_off_its_schema_is_unreadable(
    redis_server: RedisServer, fields: dict[str, object]
) -> None:
    """F16: NaN and texts as counts, arbitrary status words, another host's name: passed on
    as they were (NaN made the JSON output invalid)."""
    client = redis.Redis(port=redis_server.port)
    record = _record("hx", **fields).replace('"NaN"', "NaN")
    _plant(client, "hx", record)
    res = run_cli("fleet", "-f", "json", "--redis-url", redis_server.url)
    assert res.returncode == 1, res.stdout
    doc = json.loads(res.stdout, parse_constant=lambda c: pytest.fail(f"{c} in JSON output"))
    assert _problems(doc)["hx"], doc


def test_record_texts_are_redacted_and_a_bare_record_is_not_healthy(
    redis_server: RedisServer,
) -> None:
    """F16: a Bearer token in an incident reached the JSON verbatim; `{"schema": ...}` alone
    (no status) counted as healthy."""
    client = redis.Redis(port=redis_server.port)
    jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.abcdefSIG"
    incident = {"code": "QT101", "subject": "x", "message": f"Bearer {jwt}", "consequences": 2}
    _plant(client, "hx", _record("hx", incidents=[incident]))
    res = run_cli("fleet", "-f", "json", "--redis-url", redis_server.url)
    assert res.returncode == 0 and jwt not in res.stdout, res.stdout
    _plant(client, "hbare", '{"schema":"qtctl.host/1"}')
    code, doc = _fleet(redis_server)
    assert code == 1 and _problems(doc)["hbare"]


def test_doctor_reports_a_code_root_file_named_in_bytes_not_utf8(tmp_path: Path) -> None:
    """F1 on the host: one planted file name stopped every root `qtctl doctor` run."""
    code = tmp_path / "code"
    code.mkdir()
    (code / os.fsdecode(b"bad\xffutf8.sh")).write_bytes(b"#!/bin/bash\r\necho x\r\n")
    config = tmp_path / "cfg.toml"
    config.write_text(
        f'[fix]\nstate_dir = "{tmp_path / "state"}"\n[fleet]\ncode_roots = ["{code}"]\n'
        '[redis]\nsocket_timeout = 0.2\n[doctor]\nselect = ["QT302"]\n'
    )
    for fmt in ("concise", "full", "json", "sarif", "github"):
        res = run_cli(
            "-c", str(config), "doctor", "--redis-url", "redis://127.0.0.1:1/0", "-f", fmt
        )
        assert res.returncode in (0, 1) and "internal error" not in res.stderr, (fmt, res.stderr)
        shown = ("bad\\xffutf8.sh", "bad\\\\xffutf8.sh", "bad%FFutf8.sh")  # JSON, SARIF URI
        assert any(name in res.stdout for name in shown), fmt


def test_report_output_never_replaces_a_device_fifo_or_link_to_one(tmp_path: Path) -> None:
    """F21: `--output /dev/null` made the host's /dev/null a regular 0644 file."""
    if os.geteuid() != 0:
        pytest.skip("mknod needs root")
    devices = tmp_path / "dev"
    devices.mkdir()
    os.mknod(devices / "null", 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    os.mkfifo(devices / "fifo")
    (devices / "stdout").symlink_to("/proc/self/fd/1")
    for name, kind in (("null", "character device"), ("fifo", "FIFO"), ("stdout", " is a ")):
        res = run_cli(
            "report", "--redis-url", "redis://127.0.0.1:1/0", "-f", "prometheus",
            "--output", str(devices / name),
        )  # fmt: skip
        assert res.returncode == 2 and kind in res.stderr, (name, res.stderr)
    assert stat.S_ISCHR(os.lstat(devices / "null").st_mode)
    assert stat.S_ISFIFO(os.lstat(devices / "fifo").st_mode)
    assert (devices / "stdout").is_symlink()


def test_records_listing_more_streams_than_a_host_publishes_are_not_believed(
    redis_server: RedisServer,
) -> None:
    """F22: records just under 1 MiB, each listing 15,000 streams, took `qtctl fleet` to
    gigabytes of memory (240 hosts: 1.9 GB, 24 s)."""
    client = redis.Redis(port=redis_server.port)
    streams = [{"name": f"s{i}", "writes": True, "groups": ["g"]} for i in range(2000)]
    grouped = [{"name": "s", "reads": True, "groups": [{"name": f"g{i}"} for i in range(500)]}]
    for index in range(3):
        _plant(client, f"h{index}", _record(f"h{index}", streams=streams))
    _plant(client, "hg", _record("hg", streams=grouped))
    _plant(client, "fine", _record("fine", streams=streams[:10]))
    code, doc = _fleet(redis_server)
    problems = _problems(doc)
    assert code == 1 and all("2000 streams" in problems[f"h{i}"] for i in range(3)), problems
    assert "groups" in problems["hg"] and problems["fine"] == ""
    assert doc["shared_streams"] == []  # nothing of an unbelieved record is used


def test_publish_incident_takes_monitor_values_as_data(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    """F18: a non-UTF-8 MONITOR_* value crashed `doctor --publish-incident` before it
    published; MONITOR_UNIT replaced `--unit` in the entry; `1; rm -rf /` went out as a status."""
    config = tmp_path / "cfg.toml"
    config.write_text(
        f'[fix]\nstate_dir = "{tmp_path / "state"}"\n[fleet]\ncode_roots = ["{tmp_path}/none"]\n'
    )
    env = {
        **os.environb,
        b"MONITOR_SERVICE_RESULT": b"bad\xff\xfe",
        b"MONITOR_UNIT": b"quantum-\xff.service",
        b"MONITOR_EXIT_STATUS": b"1; rm -rf /",
        b"PYTHONPATH": str(REPO).encode(),
    }
    args = ["-c", str(config), "doctor", "--unit", "quantum-x.service", "--publish-incident"]
    args += ["--fail-on", "never", "--redis-url", redis_server.url]
    res = subprocess.run(
        [sys.executable, "-m", "qtctl", *args], capture_output=True, env=env, timeout=120
    )
    assert res.returncode == 0 and b"internal error" not in res.stderr, res.stderr
    client = redis.Redis(port=redis_server.port, decode_responses=True)
    entries: Any = client.xrange("quantum:stream:qtctl.incidents")
    assert len(entries) == 1, res.stderr
    fields = dict(entries[0][1])
    assert fields["unit"] == "quantum-x.service", fields
    assert fields["monitor_unit"] == "quantum-\\xff.service"
    assert fields["exit_status"] == "" and fields["result"] == ""
