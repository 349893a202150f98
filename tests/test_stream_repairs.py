"""QT403/QT404/QT405 repairs on a real redis-server: groups, leftover consumers, migrations."""

from __future__ import annotations

import json
import time
from pathlib import Path

import redis

from qtctl.adapters.stream_archive import read_archive
from tests.conftest import run_cli
from tests.support.redis_server import RedisServer

P = "quantum:stream:"
TARGET, SOURCE = f"{P}trade.execution.result", f"{P}trade.execution.res"


def configure(
    config: Path,
    server: RedisServer,
    state: Path,
    extra: str = "",
    expected: str = "['trade.execution.result']",
) -> None:
    config.write_text(
        f"[redis]\nurl = '{server.url}'\n[fix]\nstate_dir = '{state}'\n"
        f"[streams]\nexpected = {expected}\n{extra}"
    )


def fix(*args: str) -> dict:
    res = run_cli("--format", "json", "fix", *args)
    assert res.returncode in (0, 1), res.stderr
    return json.loads(res.stdout)


def test_missing_group_is_created_at_the_configured_id_once_and_undone(
    redis_server: RedisServer, tmp_path: Path, isolated_env: Path
) -> None:
    client = redis.Redis.from_url(redis_server.url, decode_responses=True)
    stream, group = f"{P}trade.closed", "quantum:group:rl:trade.closed"
    for i in range(40):
        client.xadd(stream, {"i": str(i)})
    configure(
        isolated_env,
        redis_server,
        tmp_path / "state",
        f'group_start_id = "0"\n[streams.per_stream."trade.closed"]\ngroups = ["{group}"]\n',
        expected="[]",
    )
    [repair] = fix("--select", "QT403")["repairs"]
    assert repair["cause"] == "group-missing"
    assert repair["actions"] == [f"XGROUP CREATE {stream} {group} 0"]
    assert not client.xinfo_groups(stream)  # preview changes nothing

    doc = fix("--select", "QT403", "--apply")
    assert doc["repairs"][0]["result"] == "fixed"
    [info] = client.xinfo_groups(stream)
    assert (info["name"], info["last-delivered-id"], info["lag"]) == (group, "0-0", 40)
    assert fix("--select", "QT403", "--apply")["repairs"] == []  # nothing left to do

    undo = run_cli("fix", "--undo", doc["record"])
    assert undo.returncode == 0, undo.stderr
    assert client.xinfo_groups(stream) == []


def test_leftover_consumer_with_nothing_pending_is_deleted(
    redis_server: RedisServer, tmp_path: Path, isolated_env: Path
) -> None:
    client = redis.Redis.from_url(redis_server.url, decode_responses=True)
    stream, group = f"{P}apply.plan", "quantum:group:apply:apply.plan"
    client.xadd(stream, {"i": "0"})
    client.xgroup_create(stream, group, id="0")
    client.xreadgroup(group, "apply-old-4711", {stream: ">"})
    client.xack(stream, group, client.xrange(stream)[0][0])
    time.sleep(2.2)
    configure(isolated_env, redis_server, tmp_path / "state", "dead_consumer_sec = 2\n")
    [repair] = fix("--select", "QT404", "--apply")["repairs"]
    assert repair["cause"] == "idle-consumer"
    assert repair["result"] == "fixed"
    assert client.xinfo_consumers(stream, group) == []


def seed_names(client: redis.Redis, code: Path, readers_on_source: bool) -> list[tuple]:
    base = int(time.time() * 1000) - 60_000
    for i in range(25):
        client.xadd(SOURCE, {"i": str(i), "symbol": "BTCUSDT"}, id=f"{base + i}-0")
    code.mkdir()
    (code / "bridge.py").write_text(f"DEST = '{TARGET}'\n")
    if readers_on_source:
        (code / "exit_monitor.py").write_text(f"STREAM = '{SOURCE}'\n")
        (code / "position_monitor.py").write_text(f"STREAM = '{SOURCE}'\n")
    else:
        (code / "exit_monitor.py").write_text(f"STREAM = '{TARGET}'\n")
    return client.xrange(SOURCE)


def test_near_miss_is_migrated_with_ids_and_order_and_undone(
    redis_server: RedisServer, tmp_path: Path, isolated_env: Path
) -> None:
    client = redis.Redis.from_url(redis_server.url, decode_responses=True)
    original = seed_names(client, tmp_path / "code", readers_on_source=False)
    configure(isolated_env, redis_server, tmp_path / "state")
    isolated_env.write_text(
        isolated_env.read_text() + f"[fleet]\ncode_roots = ['{tmp_path / 'code'}']\n"
    )
    [held] = fix("--select", "QT405", "--apply")["repairs"]
    assert held["held"].startswith("moving entries between streams")
    assert client.xlen(SOURCE) == 25 and not client.exists(TARGET)

    doc = fix("--select", "QT405", "--apply", "--unsafe")
    [repair] = doc["repairs"]
    assert repair["result"] == "fixed", repair
    assert client.xrange(TARGET) == original
    assert not client.exists(SOURCE)
    [archive] = (tmp_path / "state" / "fixes" / doc["record"]).glob("*res.jsonl.gz")
    assert [(e["id"], e["fields"]) for e in read_archive(archive)] == original

    undo = run_cli("fix", "--undo", doc["record"])
    assert undo.returncode == 0, undo.stderr
    assert client.xrange(SOURCE) == original and client.xlen(TARGET) == 0


def test_interleaved_merge_keeps_every_entry_once_in_order_and_the_groups(
    redis_server: RedisServer, tmp_path: Path, isolated_env: Path
) -> None:
    client = redis.Redis.from_url(redis_server.url, decode_responses=True)
    base = int(time.time() * 1000) - 60_000
    for i in range(0, 40, 2):  # the writer's entries, even milliseconds
        client.xadd(TARGET, {"i": str(i), "from": "target"}, id=f"{base + i}-0")
    for i in range(1, 40, 2):  # the misnamed stream's, odd, plus two already copied
        client.xadd(SOURCE, {"i": str(i), "from": "source"}, id=f"{base + i}-0")
    client.xadd(SOURCE, {"i": "40", "from": "target"}, id=f"{base + 40}-0")
    client.xadd(TARGET, {"i": "40", "from": "target"}, id=f"{base + 40}-0")
    group = "quantum:group:exporter"
    client.xgroup_create(TARGET, group, id=f"{base + 10}-0")
    union = sorted(
        {*map(tuple, map(lambda e: (e[0], tuple(e[1].items())), client.xrange(TARGET)))}
        | {*map(tuple, map(lambda e: (e[0], tuple(e[1].items())), client.xrange(SOURCE)))},
        key=lambda e: tuple(map(int, e[0].split("-"))),
    )
    configure(isolated_env, redis_server, tmp_path / "state")
    doc = fix("--select", "QT405", "--apply", "--unsafe")
    assert doc["repairs"][0]["result"] == "fixed", doc
    merged = [(i, tuple(f.items())) for i, f in client.xrange(TARGET)]
    assert merged == union and len(merged) == 41
    [info] = client.xinfo_groups(TARGET)
    assert info["last-delivered-id"] == f"{base + 10}-0"
    assert info["lag"] == 41 - 11  # entries up to 10 ms were read: 0..10 now counts 11
    assert not client.exists(SOURCE)


def test_merge_that_would_drop_pending_entries_is_refused_and_changes_nothing(
    redis_server: RedisServer, tmp_path: Path, isolated_env: Path
) -> None:
    client = redis.Redis.from_url(redis_server.url, decode_responses=True)
    base = int(time.time() * 1000) - 60_000
    client.xadd(TARGET, {"i": "2"}, id=f"{base + 2}-0")
    client.xadd(SOURCE, {"i": "1"}, id=f"{base + 1}-0")
    client.xgroup_create(TARGET, "g", id="0")
    client.xreadgroup("g", "c", {TARGET: ">"})
    configure(isolated_env, redis_server, tmp_path / "state")
    doc = fix("--select", "QT405", "--apply", "--unsafe")
    assert doc["repairs"][0]["result"] == "still-failing"
    record = json.loads((tmp_path / "state" / "fixes" / f"{doc['record']}.json").read_text())
    [failed] = [c for c in record["changes"] if c["kind"] == "failed"]
    assert "hold pending entries a rebuild would drop" in failed["error"]
    assert doc["failures"] == [{"action": failed["action"], "error": failed["error"]}]
    assert client.xlen(SOURCE) == 1 and client.xlen(TARGET) == 1
    assert client.xpending(TARGET, "g")["pending"] == 1


def test_migration_against_the_evidence_is_held(
    redis_server: RedisServer, tmp_path: Path, isolated_env: Path
) -> None:
    client = redis.Redis.from_url(redis_server.url, decode_responses=True)
    seed_names(client, tmp_path / "code", readers_on_source=True)
    configure(isolated_env, redis_server, tmp_path / "state")
    isolated_env.write_text(
        isolated_env.read_text() + f"[fleet]\ncode_roots = ['{tmp_path / 'code'}']\n"
    )
    [repair] = fix("--select", "QT405", "--apply", "--unsafe")["repairs"]
    assert repair["held"].startswith(f"readers use {SOURCE} (0 consumer group(s), named in 2")
    assert client.xlen(SOURCE) == 25 and not client.exists(TARGET)


def test_migration_into_a_bridge_destination_beyond_its_position_is_held(
    redis_server: RedisServer, tmp_path: Path, isolated_env: Path
) -> None:
    client = redis.Redis.from_url(redis_server.url, decode_responses=True)
    seed_names(client, tmp_path / "code", readers_on_source=False)
    configure(isolated_env, redis_server, tmp_path / "state")
    isolated_env.write_text(
        isolated_env.read_text() + f"[fleet]\ncode_roots = ['{tmp_path / 'code'}']\n"
    )
    state = "quantum:qtctl:bridge:quantum:stream:execution.result"
    client.hset(state, "position", "1-0")  # qtctl's bridge started before the old copies
    [held] = fix("--select", "QT405", "--apply", "--unsafe")["repairs"]
    assert held["result"] == "held"
    assert held["held"].startswith(
        f"qtctl's bridge copies {P}execution.result into {TARGET} and is at 1-0"
    )
    assert client.xlen(SOURCE) == 25 and not client.exists(TARGET)
    newest = client.xrevrange(SOURCE, count=1)[0][0]
    client.hset(state, "position", newest)  # the bridge is past every old copy: safe to move
    [repair] = fix("--select", "QT405", "--apply", "--unsafe")["repairs"]
    assert repair["result"] == "fixed"
