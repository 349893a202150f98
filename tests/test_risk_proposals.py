"""QT501 against a real redis-server: the incident's wrong-side proposal and friends."""

from __future__ import annotations

import time

import pytest
import redis

from qtctl.config import load_config
from qtctl.doctor import run_doctor
from tests.support.redis_server import RedisServer

PROPOSAL = "quantum:risk:proposal:"
POSITION = "quantum:state:positions:"


@pytest.fixture
def findings(redis_server: RedisServer) -> dict[str, object]:
    client = redis.Redis.from_url(redis_server.url, decode_responses=True)
    now = time.time()
    client.hset(
        f"{PROPOSAL}BTCUSDT",
        mapping={  # the seed's log line, exactly
            "proposed_sl": "106.1072",
            "proposed_tp": "106.0695",
            "position_side": "LONG",
            "position_current_price": "106.08",
            "ts": str(now),
        },
    )
    client.hset(
        f"{PROPOSAL}ETHUSDT",
        mapping={  # a correct short
            "stop_loss": "3120.5",
            "take_profit": "2950",
            "side": "SHORT",
            "timestamp": str(now),
        },
    )
    client.hset(f"{POSITION}ETHUSDT", mapping={"side": "SHORT", "current_price": "3050"})
    client.hset(
        f"{PROPOSAL}SOLUSDT",
        mapping={  # fine, but the publisher stopped an hour ago
            "proposed_sl": "140",
            "proposed_tp": "160",
            "position_side": "LONG",
            "position_current_price": "150",
            "computed_at_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now - 3600)),
        },
    )
    client.hset(
        f"{PROPOSAL}XRPUSDT",
        mapping={
            "proposed_sl": "nan",
            "proposed_tp": "0.7",
            "position_side": "LONG",
            "position_current_price": "0.6",
            "ts": str(now),
        },
    )
    client.set(f"{PROPOSAL}GARBAGE", "a string, not a hash")
    env = {"QTCTL__REDIS__URL": redis_server.url, "QTCTL__DOCTOR__SELECT": "QT501"}
    return {f.subject: f for f in run_doctor(load_config(None, env=env)).findings}


def test_wrong_side_proposals(findings: dict) -> None:
    assert sorted(findings) == [f"{PROPOSAL}BTCUSDT", f"{PROPOSAL}SOLUSDT", f"{PROPOSAL}XRPUSDT"]
    assert findings[f"{PROPOSAL}BTCUSDT"].detail == (
        "LONG: stop-loss 106.107 is on the wrong side of price 106.08",
        "LONG: take-profit 106.07 is on the wrong side of price 106.08",
        "LONG: take-profit 106.07 is beyond the stop-loss 106.107",
    )
    assert findings[f"{PROPOSAL}SOLUSDT"].message.startswith("stale: computed 36")
    assert findings[f"{PROPOSAL}SOLUSDT"].message.endswith(" s ago (limit 30 s)")
    assert findings[f"{PROPOSAL}XRPUSDT"].message == ("stop-loss is nan: not a usable number")
