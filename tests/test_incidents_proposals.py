"""QT501's open positions without a proposal, against a real redis-server through the CLI: only
positions old enough to have one, only when something shows that proposals are published, and
refs to the installed publisher units only (the sandbox half is tests/test_incidents_fleet.py)."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
import redis

from tests.conftest import run_cli
from tests.support.redis_server import RedisServer

PROPOSAL = "quantum:risk:proposal:"
POSITION = "quantum:state:positions:"
NOWHERE = "qtctl-test-no-such-publisher.service"  # no host has this unit file


def qt501(server: RedisServer, publishers: str = NOWHERE) -> list[dict[str, Any]]:
    env = {
        "QTCTL__REDIS__URL": server.url,
        "QTCTL__DOCTOR__SELECT": "QT501",
        "QTCTL__RISK__PUBLISHER_UNITS": publishers,
    }
    res = run_cli("--format", "json", "doctor", env=env)
    assert res.returncode in (0, 1), res.stderr
    return json.loads(res.stdout)["findings"]  # type: ignore[no-any-return]


def positions(client: redis.Redis, **by_symbol: dict[str, object]) -> None:
    for symbol, fields in by_symbol.items():
        base = {"symbol": symbol, "side": "LONG", "entry_price": "100", "current_price": "101"}
        client.hset(f"{POSITION}{symbol}", mapping={**base, **fields})


@pytest.fixture
def client(redis_server: RedisServer) -> redis.Redis:
    return redis.Redis.from_url(redis_server.url, decode_responses=True)


def test_old_open_positions_without_a_proposal_are_one_error(
    redis_server: RedisServer, client: redis.Redis
) -> None:
    positions(
        client,
        BTCUSDT={"age_sec": 3600},
        ETHUSDT={"age_sec": "31.5", "qty": "-2"},
        SOLUSDT={"age_sec": 5},  # opened 5 s ago: may not have one yet (limit 30 s)
        XRPUSDT={"age_sec": 3600, "qty": "0"},  # flat: nothing to protect
        ADAUSDT={},  # no age: unknown, not counted
        DOGEUSDT={"age_sec": 3600},
    )
    client.hset(
        f"{PROPOSAL}DOGEUSDT",  # a publisher is at work: DOGE has its proposal
        mapping={"stop_loss": "98", "take_profit": "104", "side": "LONG", "price": "101"}
        | {"ts": str(time.time())},
    )
    [found] = qt501(redis_server)
    assert (found["severity"], found["subject"], found["cause"]) == (
        "error",
        f"{PROPOSAL}*",
        "missing-proposal",
    )
    assert found["message"] == "no proposal for 2 open position(s): BTCUSDT, ETHUSDT"
    assert found["detail"][1:] == [
        f"{POSITION}BTCUSDT: open 3600 s, no {PROPOSAL}BTCUSDT",
        f"{POSITION}ETHUSDT: open 32 s, no {PROPOSAL}ETHUSDT",
    ]
    assert found["refs"] == []  # no publisher unit on this host: nothing to put it under


def test_no_finding_without_evidence_that_proposals_are_published(
    redis_server: RedisServer, client: redis.Redis
) -> None:
    positions(client, BTCUSDT={"age_sec": 3600})
    assert qt501(redis_server) == []  # no proposal, no counters, no publisher unit here
    assert qt501(redis_server, publishers="") == []
    client.hset("quantum:risk:kernel:stats", mapping={"published": "3"})  # the kernel ran
    [found] = qt501(redis_server)
    assert found["cause"] == "missing-proposal" and found["subject"] == f"{PROPOSAL}*"


def test_a_stale_proposal_is_cause_stale_a_wrong_one_stays_invalid(
    redis_server: RedisServer, client: redis.Redis
) -> None:
    old = str(time.time() - 3600)
    base = {"side": "LONG", "price": "100", "ts": old}
    client.hset(f"{PROPOSAL}BTCUSDT", mapping={**base, "stop_loss": "98", "take_profit": "104"})
    client.hset(f"{PROPOSAL}ETHUSDT", mapping={**base, "stop_loss": "101", "take_profit": "104"})
    causes = {f["subject"]: f["cause"] for f in qt501(redis_server)}
    assert causes == {f"{PROPOSAL}BTCUSDT": "stale", f"{PROPOSAL}ETHUSDT": "invalid-proposal"}
