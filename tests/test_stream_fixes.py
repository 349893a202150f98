"""QT401's repair on a real redis-server: archive first, trim exactly that, restore on demand."""

from __future__ import annotations

import json
from pathlib import Path

import redis

from qtctl.adapters.stream_archive import read_archive
from tests.conftest import run_cli
from tests.support.redis_server import RedisServer

STREAM = "quantum:stream:model.retrain"


def setup(redis_server: RedisServer, tmp_path: Path, config: Path) -> list[tuple[str, dict]]:
    client = redis.Redis.from_url(redis_server.url, decode_responses=True)
    pipe = client.pipeline(transaction=False)
    for i in range(25_000):
        pipe.xadd(STREAM, {"i": str(i), "symbol": "BTCUSDT"})
    pipe.execute()
    config.write_text(
        f"[redis]\nurl = '{redis_server.url}'\n[fix]\nstate_dir = "
        f"'{tmp_path / 'state'}'\n[streams]\nlength_warn = 20000\n"
        "retention_maxlen = 10000\nexpected = []\n"
    )
    return client.xrange(STREAM)


def test_trim_archives_first_and_loses_nothing(
    redis_server: RedisServer, tmp_path: Path, isolated_env: Path
) -> None:
    original = setup(redis_server, tmp_path, isolated_env)
    preview = run_cli("--format", "json", "fix", "--select", "QT401", "--apply")
    [held] = json.loads(preview.stdout)["repairs"]
    assert held["held"].startswith("trimming a stream needs --unsafe")
    client = redis.Redis.from_url(redis_server.url, decode_responses=True)
    assert client.xlen(STREAM) == 25_000

    res = run_cli("--format", "json", "fix", "--select", "QT401", "--apply", "--unsafe")
    doc = json.loads(res.stdout)
    [repair] = doc["repairs"]
    assert repair["result"] == "fixed", res.stderr
    kept = client.xrange(STREAM)
    assert len(kept) == 10_000
    [archive] = (tmp_path / "state" / "fixes" / doc["record"]).glob("*.jsonl.gz")
    archived = [(e["id"], e["fields"]) for e in read_archive(archive)]
    assert len(archived) == 15_000
    assert archived + [(i, f) for i, f in kept] == [(i, f) for i, f in original]

    into = f"{STREAM}:restored"
    restored = run_cli("streams", "restore", str(archive), "--into", into)
    assert restored.stdout.strip() == f"restored 15000 entries into {into}", restored.stderr
    assert [(i, f) for i, f in client.xrange(into)] == archived

    refused = run_cli("streams", "restore", str(archive), "--into", STREAM)
    assert refused.returncode == 2
    assert "already holds entries at or after" in refused.stderr

    undo = run_cli("fix", "--undo", "LAST")
    assert undo.returncode == 0 and "restore-archive" in undo.stdout


def test_dead_consumer_hands_its_pending_entries_to_a_live_one(
    redis_server: RedisServer, tmp_path: Path, isolated_env: Path
) -> None:
    import time

    client = redis.Redis.from_url(redis_server.url, decode_responses=True)
    stream, group = "quantum:stream:trade.closed", "quantum:group:rl:trade.closed"
    for i in range(30):
        client.xadd(stream, {"i": str(i)})
    client.xgroup_create(stream, group, id="0")
    client.xreadgroup(group, "rl-agent-old", {stream: ">"}, count=20)
    time.sleep(2.5)
    client.xreadgroup(group, "rl-agent-new", {stream: ">"}, count=5)  # alive: just read
    isolated_env.write_text(
        f"[redis]\nurl = '{redis_server.url}'\n[fix]\nstate_dir = "
        f"'{tmp_path / 'state'}'\n[streams]\ndead_consumer_sec = 2\n"
        "expected = []\n"
    )

    def keep_alive() -> None:  # reading its own history updates the consumer's seen-time
        client.xreadgroup(group, "rl-agent-new", {stream: "0"}, count=1)

    keep_alive()
    held = json.loads(run_cli("--format", "json", "fix", "--select", "QT404", "--apply").stdout)
    assert held["repairs"][0]["held"].endswith("needs --unsafe")
    keep_alive()
    res = run_cli("--format", "json", "fix", "--select", "QT404", "--apply", "--unsafe")
    [repair] = json.loads(res.stdout)["repairs"]
    assert repair["result"] == "fixed", res.stdout
    consumers = {c["name"]: c["pending"] for c in client.xinfo_consumers(stream, group)}
    assert consumers == {"rl-agent-new": 25}  # 20 taken over + its own 5, nothing lost


def test_trim_by_age_archives_exactly_the_entries_older_than_the_retention(
    redis_server: RedisServer, tmp_path: Path, isolated_env: Path
) -> None:
    import time

    client = redis.Redis.from_url(redis_server.url, decode_responses=True)
    old, recent = int((time.time() - 7200) * 1000), int((time.time() - 60) * 1000)
    for i in range(300):
        client.xadd(STREAM, {"i": str(i)}, id=f"{old + i}-0")
    for i in range(200):
        client.xadd(STREAM, {"i": str(300 + i)}, id=f"{recent + i}-0")
    original = client.xrange(STREAM)
    isolated_env.write_text(
        f"[redis]\nurl = '{redis_server.url}'\n[fix]\nstate_dir = '{tmp_path / 'state'}'\n"
        "[streams]\nexpected = []\nlength_warn = 100\n"
        '[streams.per_stream."model.retrain"]\nretention_max_age_sec = 3600\n'
    )
    doc = json.loads(run_cli("--format", "json", "fix", "--select", "QT401").stdout)
    assert doc["repairs"][0]["actions"][0].startswith(
        f"archive the entries of {STREAM} beyond the newest 100000 and older than 3600 s"
    )
    res = run_cli("--format", "json", "fix", "--select", "QT401", "--apply", "--unsafe")
    doc = json.loads(res.stdout)
    assert doc["repairs"][0]["result"] == "still-failing"  # 200 left: still over length_warn
    [archive] = (tmp_path / "state" / "fixes" / doc["record"]).glob("*.jsonl.gz")
    archived = [(e["id"], e["fields"]) for e in read_archive(archive)]
    assert archived == [(i, f) for i, f in original[:300]]
    assert client.xrange(STREAM) == original[300:]
