"""Live mode on a real redis-server: every stream repair that changes what a trading consumer
reads (QT401 trim, QT404 hand-over, QT405 migration, QT504 quarantine, QT403 at 0) is held until
`--only STREAM` names the stream, read from the finding's facts."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis

from tests.conftest import run_cli
from tests.support.redis_server import RedisServer
from tests.test_trade_records import seed as seed_garbage

pytestmark = pytest.mark.redis
P = "quantum:stream:"
INTENT, CLOSED = f"{P}trade.intent", f"{P}trade.closed"
GROUP = "quantum:group:execution:trade.intent"


@dataclass(frozen=True)
class Case:
    """One repair: the stream to name, its config, its data, and what it looks like."""

    code: str
    stream: str
    config: str
    seed: Callable[[redis.Redis], None]
    observe: Callable[[redis.Redis], object]
    before_run: Callable[[redis.Redis], None] = lambda client: None


def seed_long(client: redis.Redis) -> None:
    for i in range(300):
        client.xadd(INTENT, {"i": str(i), "symbol": "BTCUSDT"})


def seed_dead_consumer(client: redis.Redis) -> None:
    seed_long(client)
    client.xgroup_create(INTENT, GROUP, id="0")
    client.xreadgroup(GROUP, "executor-old", {INTENT: ">"}, count=20)
    time.sleep(2.5)
    keep_alive(client)


def keep_alive(client: redis.Redis) -> None:  # reading its own history refreshes its seen-time
    client.xreadgroup(GROUP, "executor-new", {INTENT: "0"}, count=1)


def seed_near_miss(client: redis.Redis) -> None:
    for i in range(25):
        client.xadd(f"{INTENT}s", {"i": str(i), "symbol": "BTCUSDT"})


def seed_trades(client: redis.Redis) -> None:
    seed_garbage(client)  # 16 garbage records among 61 closed trades


def pending(client: redis.Redis) -> object:
    return {c["name"]: c["pending"] for c in client.xinfo_consumers(INTENT, GROUP)}


CASES = [
    Case(
        "QT401",
        INTENT,
        "length_warn = 100\nretention_maxlen = 50\n",
        seed_long,
        lambda client: client.xlen(INTENT),
    ),
    Case(
        "QT404",
        INTENT,
        "dead_consumer_sec = 2\n",
        seed_dead_consumer,
        pending,
        before_run=keep_alive,
    ),
    Case(
        "QT405",
        INTENT,
        "expected = ['trade.intent']\n",
        seed_near_miss,
        lambda client: (client.xlen(INTENT), client.xlen(f"{INTENT}s")),
    ),
    Case("QT504", CLOSED, "", seed_trades, lambda client: client.xlen(CLOSED)),
    Case(
        "QT403",
        INTENT,
        f'group_start_id = "0"\n[streams.per_stream."trade.intent"]\ngroups = ["{GROUP}"]\n',
        seed_long,
        lambda client: client.xinfo_groups(INTENT),
    ),
]


def configure(config: Path, server: RedisServer, state: Path, streams: str) -> None:
    expected = "" if "expected =" in streams else "expected = []\n"
    config.write_text(
        f"[redis]\nurl = '{server.url}'\n[fix]\nstate_dir = '{state}'\n[fleet]\n"
        f"live_mode = true\n[streams]\n{expected}{streams}"
    )


def fix(case: Case, client: redis.Redis, *args: str) -> dict[str, str]:
    case.before_run(client)
    res = run_cli("--format", "json", "fix", "--select", case.code, "--apply", "--unsafe", *args)
    assert res.returncode in (0, 1), res.stderr
    [repair] = json.loads(res.stdout)["repairs"]
    return repair  # type: ignore[no-any-return]


@pytest.mark.parametrize("case", CASES, ids=[c.code for c in CASES])
def test_live_mode_holds_the_repair_until_the_stream_is_named(
    case: Case, redis_server: RedisServer, tmp_path: Path, isolated_env: Path
) -> None:
    client = redis.Redis.from_url(redis_server.url, decode_responses=True)
    case.seed(client)
    configure(isolated_env, redis_server, tmp_path / "state", case.config)
    before = case.observe(client)
    for only in ((), ("--only", f"{P}trade.other,quantum-execution.service")):
        held = fix(case, client, *only)
        assert held["result"] == "held", held
        assert held["held"].startswith(
            f"live mode: trading consumers read {case.stream}: name the stream to change it "
            f"(--only {case.stream}); fleet.live_mode = true"
        )
        assert case.observe(client) == before
    done = fix(case, client, "--only", case.stream)
    assert done["result"] == "fixed", done
    assert case.observe(client) != before


def test_an_idle_consumer_holding_nothing_is_deleted_in_live_mode_without_naming(
    redis_server: RedisServer, tmp_path: Path, isolated_env: Path
) -> None:
    client = redis.Redis.from_url(redis_server.url, decode_responses=True)
    entry = client.xadd(INTENT, {"i": "0"})
    client.xgroup_create(INTENT, GROUP, id="0")
    client.xreadgroup(GROUP, "executor-4711", {INTENT: ">"})
    client.xack(INTENT, GROUP, entry)  # holds nothing: deleting it cannot redeliver anything
    time.sleep(2.2)
    configure(isolated_env, redis_server, tmp_path / "state", "dead_consumer_sec = 2\n")
    res = run_cli("--format", "json", "fix", "--select", "QT404", "--apply")
    [repair] = json.loads(res.stdout)["repairs"]
    assert (repair["cause"], repair["result"]) == ("idle-consumer", "fixed")
