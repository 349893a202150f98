"""QT504 on a real redis-server: garbage closed trades found by the RL agent's validator and
quarantined (archived first, pending entries left alone), nothing lost."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import redis

from qtctl.adapters.stream_archive import read_archive
from tests.conftest import run_cli
from tests.support.redis_server import RedisServer

pytestmark = pytest.mark.redis
STREAM = "quantum:stream:trade.closed"


def trade(i: int, pnl: float, exit_price: float = 101.0) -> dict[str, str]:
    return {
        "symbol": "BTCUSDT",
        "side": "LONG",
        "entry_price": "100",
        "exit_price": str(exit_price),
        "pnl_percent": f"{pnl}",
        "source": "exit-monitor",
        "order_id": f"o{i}",
    }


def seed(client: redis.Redis) -> tuple[list[str], list[str]]:
    good, bad = [], []
    for i in range(60):
        if i % 4 == 0:  # the old daemon's `PnL=0.00 (-100 %)` on a winning trade
            bad.append(client.xadd(STREAM, trade(i, -100.0)))
        else:
            good.append(client.xadd(STREAM, trade(i, 1.0)))
    bad.append(client.xadd(STREAM, {"symbol": "ETHUSDT", "source": "exit-monitor"}))
    return good, bad


def config(tmp_path: Path, url: str, path: Path) -> None:
    path.write_text(
        f"[redis]\nurl = '{url}'\n[fix]\nstate_dir = '{tmp_path / 'state'}'\n"
        "[streams]\nexpected = []\n"
    )


def test_garbage_is_found_by_reason_and_producer(
    redis_server: RedisServer, tmp_path: Path, isolated_env: Path
) -> None:
    client = redis.Redis.from_url(redis_server.url, decode_responses=True)
    seed(client)
    client.xadd(STREAM, {**trade(99, 1.0), "source": "replay-test"})  # a test lane: not garbage
    config(tmp_path, redis_server.url, isolated_env)
    res = run_cli("--format", "json", "doctor", "--select", "QT504")
    assert res.returncode == 1
    [finding] = json.loads(res.stdout)["findings"]
    assert finding["message"] == (
        "16 of the newest 62 closed trades are garbage (pnl-inconsistent most)"
    )
    assert finding["detail"][:2] == [
        "reasons: pnl-inconsistent 15, missing-field 1",
        "producers: exit-monitor 16",
    ]


def test_quarantine_moves_exactly_the_garbage_and_keeps_pending_entries(
    redis_server: RedisServer, tmp_path: Path, isolated_env: Path
) -> None:
    client = redis.Redis.from_url(redis_server.url, decode_responses=True)
    good, bad = seed(client)
    original = dict(client.xrange(STREAM))
    client.xgroup_create(STREAM, "rl", id="0")
    client.xreadgroup("rl", "agent", {STREAM: ">"}, count=1)  # bad[0] is the first entry
    config(tmp_path, redis_server.url, isolated_env)
    preview = run_cli("--format", "json", "fix", "--select", "QT504", "--apply")
    [held] = json.loads(preview.stdout)["repairs"]
    assert held["held"].startswith("deleting entries from a stream consumers read needs --unsafe")
    assert client.xlen(STREAM) == 61

    res = run_cli("--format", "json", "fix", "--select", "QT504", "--apply", "--unsafe")
    doc = json.loads(res.stdout)
    [repair] = doc["repairs"]
    assert repair["result"] == "still-failing"  # the pending garbage record stays, on purpose
    assert repair["after"]["detail"][-1] == "pending in a consumer group (left alone by the fix): 1"
    left = [entry_id for entry_id, _ in client.xrange(STREAM)]
    assert left == sorted([bad[0], *good], key=lambda i: tuple(map(int, i.split("-"))))
    moved = client.xrange(f"{STREAM}:quarantine")
    assert [f["quarantined_from_id"] for _, f in moved] == bad[1:]
    assert {f["quarantine_reason"] for _, f in moved} == {"pnl-inconsistent", "missing-field"}
    [archive] = (tmp_path / "state" / "fixes" / doc["record"]).glob("*.quarantine.jsonl.gz")
    archived = {e["id"]: e["fields"] for e in read_archive(archive)}
    assert archived == {i: original[i] for i in bad[1:]}  # nothing lost: archive + quarantine

    client.xack(STREAM, "rl", bad[0])
    again = run_cli("--format", "json", "fix", "--select", "QT504", "--apply", "--unsafe")
    [repair] = json.loads(again.stdout)["repairs"]
    assert repair["result"] == "fixed"
    assert run_cli("doctor", "--select", "QT504").returncode == 0
    undo = run_cli("fix", "--undo", "LAST")
    assert undo.returncode == 0 and "restore-archive" in undo.stdout
