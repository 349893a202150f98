"""QT406, QT502, QT503 against a real redis-server."""

from __future__ import annotations

import time

import redis

from qtctl.config import load_config
from qtctl.doctor import run_doctor
from tests.support.redis_server import RedisServer

P = "quantum:stream:"


def doctor(url: str, select: str, **env: str) -> dict[str, object]:
    base = {"QTCTL__REDIS__URL": url, "QTCTL__DOCTOR__SELECT": select}
    report = run_doctor(load_config(None, env={**base, **env}))
    return {f"{f.code} {f.subject}": f for f in report.findings}


def test_rl_agent_learning_from_garbage(redis_server: RedisServer) -> None:
    client = redis.Redis.from_url(redis_server.url, decode_responses=True)
    client.hset(
        "quantum:rl:agent:stats",
        mapping={"experiences_processed": "0", "last_update": str(time.time() - 3600)},
    )
    for _ in range(20):  # what PnL=0.00 (-100%) records turn into
        client.xadd(f"{P}rl_rewards", {"symbol": "SOLUSDT", "reward": "-1.0"})
    client.xadd(f"{P}rl_rewards", {"symbol": "BTCUSDT", "reward": "-1.0"})
    for _ in range(5):
        client.xadd(f"{P}trade.closed", {"symbol": "SOLUSDT"})
    finding = doctor(redis_server.url, "QT502")["QT502 quantum:rl:agent:stats"]
    assert finding.severity.name == "ERROR"
    assert finding.detail[0].startswith("stats last updated 3600 s ago")
    assert finding.detail[1:] == (
        "zero experiences while trade.closed holds 5 entries",
        "all 21 recent rewards are -1.0: learning from degenerate records",
    )


def test_healthy_rl_agent_and_out_of_range_rewards(redis_server: RedisServer) -> None:
    client = redis.Redis.from_url(redis_server.url, decode_responses=True)
    client.hset(
        "quantum:rl:agent:stats",
        mapping={"experiences_processed": "12", "last_update": str(time.time())},
    )
    for reward in (0.1, -0.2, 0.05, 0.3):
        client.xadd(f"{P}rl_rewards", {"reward": str(reward)})
    assert doctor(redis_server.url, "QT502") == {}
    client.xadd(f"{P}rl_rewards", {"reward": "180.0"})  # a percent, not a fraction
    [finding] = doctor(redis_server.url, "QT502").values()
    assert finding.message == "1 of the last 5 rewards are outside [-1, 1] (e.g. 180.0)"


def test_bridge_lag(redis_server: RedisServer) -> None:
    client = redis.Redis.from_url(redis_server.url, decode_responses=True)
    start = int((time.time() - 120) * 1000)
    ids = [client.xadd(f"{P}execution.result", {"i": i}, id=f"{start + i}-0") for i in range(50)]
    for i, entry_id in enumerate(ids[:20]):  # bridged up to the 20th, IDs preserved
        client.xadd(f"{P}trade.execution.result", {"i": i}, id=entry_id)
    [finding] = doctor(redis_server.url, "QT503").values()
    assert finding.subject == f"{P}execution.result -> {P}trade.execution.result"
    assert finding.message.startswith("30 source entries not bridged yet, the oldest 12")
    assert finding.severity.name == "WARNING"
    client.delete(f"{P}trade.execution.result")
    [finding] = doctor(redis_server.url, "QT503").values()
    assert finding.message.endswith("; the destination is empty")


def test_redis_memory_policy_risks(redis_server: RedisServer) -> None:
    client = redis.Redis.from_url(redis_server.url, decode_responses=True)
    assert doctor(redis_server.url, "QT406") == {}
    client.config_set("maxmemory-policy", "allkeys-lru")
    used = int(client.info("memory")["used_memory"])
    client.config_set("maxmemory", str(int(used * 1.05)))
    env = {
        "QTCTL__REDIS__URL": redis_server.url,
        "QTCTL__DOCTOR__SELECT": "QT406",
        "QTCTL__REDIS__REQUIRE_PERSISTENCE": "true",
    }
    causes = sorted(f.cause for f in run_doctor(load_config(None, env=env)).findings)
    assert causes == ["evicting-policy", "near-maxmemory", "no-persistence"]
