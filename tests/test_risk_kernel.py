"""The risk kernel against a real redis-server: a replay of a synthetic price path for many
positions where every published proposal is checked, restarts that must not loosen a stop,
exit-now signals, held proposals for bad inputs, and never a synthetic position."""

from __future__ import annotations

import json
import math
import random
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import redis

from qtctl.config import load_config
from qtctl.daemons.risk_kernel.daemon import RiskKernel
from tests.conftest import REPO
from tests.support.redis_server import RedisServer

STREAM = "quantum:stream:risk.proposal"


def kernel(server: RedisServer, **extra: str) -> RiskKernel:
    env = {"QTCTL__REDIS__URL": server.url, "QTCTL__RISK__PUBLISH_INTERVAL_SEC": "0.1"}
    env.update(extra)
    daemon = RiskKernel(load_config(None, env=env))
    daemon.setup()
    return daemon


def position(client: redis.Redis, symbol: str, **fields: object) -> None:
    client.hset(f"quantum:state:positions:{symbol}", mapping={k: str(v) for k, v in fields.items()})


def market(client: redis.Redis, symbol: str, **fields: object) -> None:
    base = {"sigma": 0.01, "ts": 0.5, "p_trend": 0.5, "p_mr": 0.3, "p_chop": 0.2}
    base.update(fields)
    client.hset(f"quantum:marketstate:{symbol}", mapping={k: str(v) for k, v in base.items()})


def test_replay_every_published_proposal_holds_the_invariants(redis_server: RedisServer) -> None:
    client = redis.Redis(port=redis_server.port, decode_responses=True)
    rng = random.Random(11)
    symbols = [f"SYM{i:02d}USDT" for i in range(60)]
    books = {}
    for s in symbols:
        side = rng.choice(["LONG", "SHORT"])
        entry = rng.uniform(1, 50_000)
        liq = entry * (0.8 if side == "LONG" else 1.2) if rng.random() < 0.5 else None
        books[s] = {"side": side, "entry": entry, "price": entry, "best": entry, "liq": liq}
    daemon = kernel(redis_server)
    for tick in range(60):
        for s, b in books.items():
            b["price"] *= math.exp(rng.gauss(0, 0.004))
            b["best"] = (
                max(b["best"], b["price"]) if b["side"] == "LONG" else min(b["best"], b["price"])
            )
            fields = {
                "side": b["side"],
                "entry_price": b["entry"],
                "current_price": b["price"],
                "peak_price" if b["side"] == "LONG" else "trough_price": b["best"],
                "qty": 1,
            }
            if b["liq"]:
                fields["liquidation_price"] = b["liq"]
            position(client, s, **fields)
            sigma = rng.choice([0.002, 0.01, 0.03, "nan"]) if tick % 17 == 0 else 0.01
            w = [rng.random() for _ in range(3)]
            market(client, s, sigma=sigma, ts=rng.random(), p_trend=w[0], p_mr=w[1], p_chop=w[2])
        daemon.cycle()
        time.sleep(0.11)  # each cycle is due
    published = [
        dict(json.loads(f["payload"]), symbol=f["symbol"]) for _, f in client.xrange(STREAM)
    ]
    assert len(published) > 1500
    last: dict[str, tuple[float, float]] = {}
    for f in published:
        price = float(f["position_current_price"])
        assert price > 0
        if f["trading_state"] == "exit-now":
            assert "stop_loss" not in f and f["exit_reason"].startswith("exit-")
            last.pop(f["symbol"], None)
            continue
        sl, tp = float(f["stop_loss"]), float(f["take_profit"])
        assert all(map(math.isfinite, (sl, tp))) and sl > 0 and tp > 0
        if f["position_side"] == "LONG":
            assert sl < price < tp, f
        else:
            assert tp < price < sl, f
        if f["symbol"] in last:
            prev_sl, prev_tp = last[f["symbol"]]
            sign = 1 if f["position_side"] == "LONG" else -1
            assert sign * (sl - prev_sl) >= -1e-9 * price  # the stop never loosens
            assert sign * (tp - prev_tp) >= -1e-9 * price  # the target never recedes
        last[f["symbol"]] = (sl, tp)
        weights = [float(f[k]) for k in ("p_trend", "p_mr", "p_chop")]  # as used, 6 decimals
        assert abs(sum(weights) - 1) < 1e-5 and f["seq"].isdigit() and f["inputs_digest"]
    stats = client.hgetall("quantum:risk:kernel:stats")
    assert int(stats["rejected_input"]) > 0  # the NaN sigma ticks were held back
    assert stats.get("rejected_invariant", "0") == "0"


def test_restart_never_loosens_a_stop(redis_server: RedisServer) -> None:
    client = redis.Redis(port=redis_server.port, decode_responses=True)
    position(client, "BTCUSDT", side="LONG", entry_price=100, current_price=101, peak_price=101)
    market(client, "BTCUSDT", sigma=0.01)
    kernel(redis_server).cycle()
    first = float(client.hget("quantum:risk:proposal:BTCUSDT", "stop_loss"))
    position(client, "BTCUSDT", side="LONG", entry_price=100, current_price=100.8, peak_price=100)
    market(client, "BTCUSDT", sigma=0.03)  # wider stop now, and the snapshot lost the peak
    kernel(redis_server).cycle()  # a fresh process: state comes from Redis
    second = client.hgetall("quantum:risk:proposal:BTCUSDT")
    assert float(second["stop_loss"]) >= first
    assert second["seq"] == "2" and "sl-held" in second["reasons"]


def test_crossed_stop_publishes_exit_now_and_qt501_accepts_it(
    redis_server: RedisServer, tmp_path: Path, isolated_env: Path
) -> None:
    client = redis.Redis(port=redis_server.port, decode_responses=True)
    position(client, "ETHUSDT", side="SHORT", entry_price=100, current_price=100, trough_price=100)
    market(client, "ETHUSDT")
    daemon = kernel(redis_server)
    daemon.cycle()
    sl = float(client.hget("quantum:risk:proposal:ETHUSDT", "stop_loss"))
    position(client, "ETHUSDT", side="SHORT", entry_price=100, current_price=sl + 1)
    time.sleep(0.11)
    daemon.cycle()
    proposal = client.hgetall("quantum:risk:proposal:ETHUSDT")
    assert proposal["trading_state"] == "exit-now"
    assert proposal["exit_reason"] == "exit-stop-crossed" and "stop_loss" not in proposal
    isolated_env.write_text(f"[redis]\nurl = '{redis_server.url}'\n")
    res = subprocess.run(
        [sys.executable, "-m", "qtctl", "--format", "json", "doctor", "--select", "QT501"],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert json.loads(res.stdout)["findings"] == [], res.stdout


def test_missing_regime_weight_is_held_and_never_read_as_zero(
    redis_server: RedisServer,
) -> None:
    client = redis.Redis(port=redis_server.port, decode_responses=True)
    position(client, "XRPUSDT", side="LONG", entry_price=1, current_price=1.01, peak_price=1.02)
    market(client, "XRPUSDT")
    daemon = kernel(redis_server)
    daemon.cycle()
    client.hdel("quantum:marketstate:XRPUSDT", "p_trend")
    client.hset("quantum:marketstate:XRPUSDT", "p_trnd", "0.7")  # the old publisher's wrong key
    time.sleep(0.11)
    counts = daemon.cycle()
    assert counts["rejected_input"] == 1 and counts["published"] == 0
    proposal = client.hgetall("quantum:risk:proposal:XRPUSDT")
    assert proposal["trading_state"] == "held"
    assert proposal["held_reason"] == "market state lacks p_trend"
    assert float(proposal["stop_loss"]) > 0  # the last valid proposal is kept


def test_no_positions_no_proposals_and_the_status_says_so(redis_server: RedisServer) -> None:
    client = redis.Redis(port=redis_server.port, decode_responses=True)
    market(client, "BTCUSDT")  # market data alone is not a position
    daemon = kernel(redis_server)
    daemon.cycle()
    assert daemon.status() == "no open positions: nothing to propose"
    assert not list(client.scan_iter("quantum:risk:proposal:*"))
    assert not client.exists(STREAM)


def test_closed_position_takes_its_proposal_with_it(redis_server: RedisServer) -> None:
    client = redis.Redis(port=redis_server.port, decode_responses=True)
    position(client, "SOLUSDT", side="LONG", entry_price=10, current_price=10.1, peak_price=10.2)
    market(client, "SOLUSDT")
    daemon = kernel(redis_server, QTCTL__RISK__PUBLISH_INTERVAL_SEC="0.1")
    daemon.cycle()
    assert client.exists("quantum:risk:proposal:SOLUSDT")
    client.delete("quantum:state:positions:SOLUSDT")
    time.sleep(0.11)
    daemon.cycle()
    assert not client.exists("quantum:risk:proposal:SOLUSDT")


def test_run_once_from_the_cli(redis_server: RedisServer, tmp_path: Path) -> None:
    client = redis.Redis(port=redis_server.port, decode_responses=True)
    position(client, "BTCUSDT", side="LONG", entry_price=100, current_price=101, peak_price=102)
    market(client, "BTCUSDT")
    config = tmp_path / "c.toml"
    config.write_text(f"[redis]\nurl = '{redis_server.url}'\n")
    res = subprocess.run(
        [sys.executable, "-m", "qtctl", "--config", str(config), "run", "risk-kernel", "--once"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
    )
    assert res.returncode == 0, res.stderr
    assert "1 positions: 1 proposals, 0 exit-now, 0 held back" in res.stderr
    proposal = client.hgetall("quantum:risk:proposal:BTCUSDT")
    assert float(proposal["stop_loss"]) < 101 < float(proposal["take_profit"])
    assert proposal["params_version"] == "p2.0" and proposal["seq"] == "1"


def test_a_key_of_the_wrong_type_holds_only_its_position(redis_server: RedisServer) -> None:
    client = redis.Redis(port=redis_server.port, decode_responses=True)
    for symbol in ("BTCUSDT", "ETHUSDT"):
        position(client, symbol, side="LONG", entry_price=100, current_price=101, peak_price=101)
        market(client, symbol)
    client.delete("quantum:marketstate:ETHUSDT")
    client.set("quantum:marketstate:ETHUSDT", "not a hash")
    counts = kernel(redis_server).cycle()
    assert counts["published"] == 1 and counts["rejected_input"] == 1
    assert client.hget("quantum:risk:proposal:BTCUSDT", "trading_state") == "active"
    held = client.hgetall("quantum:risk:proposal:ETHUSDT")
    assert held["trading_state"] == "held" and "WRONGTYPE" in held["held_reason"]


def test_any_text_the_fleet_wrote_is_published_exactly(redis_server: RedisServer) -> None:
    client = redis.Redis(port=redis_server.port, decode_responses=True)
    odd = {"age_sec": 'm\u00e9 "5" \\ 50%', "current_price": " 101 "}  # float() takes " 101 "
    for symbol in ("BTCUSDT", "\u00c6THUSDT"):
        position(client, symbol, side="LONG", entry_price=100, peak_price=101, **odd)
        market(client, symbol)
    assert kernel(redis_server).cycle()["published"] == 2
    for _, entry in client.xrange(STREAM):
        payload = json.loads(entry["payload"])
        assert payload["position_current_price"] == " 101 "
        stored = client.hgetall(f"quantum:risk:proposal:{entry['symbol']}")
        assert stored["position_age_sec"] == odd["age_sec"]
        assert {k: stored[k] for k in payload} == payload  # the hash carries the same values


def test_a_cycle_lost_with_redis_is_published_again(
    redis_factory: Callable[..., RedisServer],
) -> None:
    server = redis_factory(aof=True)
    client = redis.Redis(port=server.port, decode_responses=True)
    position(client, "BTCUSDT", side="LONG", entry_price=100, current_price=101, peak_price=101)
    position(client, "SOLUSDT", side="LONG", entry_price=10, current_price=10.1, peak_price=10.1)
    market(client, "BTCUSDT")
    market(client, "SOLUSDT")
    daemon = kernel(server, QTCTL__RISK__PUBLISH_INTERVAL_SEC="600")  # unchanged: not due again
    daemon.cycle()
    position(client, "BTCUSDT", side="LONG", entry_price=100, current_price=101.5, peak_price=101.5)
    client.delete("quantum:state:positions:SOLUSDT")  # closed
    daemon.symbols.remove("SOLUSDT")
    server.kill()
    with pytest.raises(redis.ConnectionError):
        daemon.cycle()
    server = redis_factory(aof=True, port=server.port, workdir=server.workdir)
    counts = daemon.cycle()  # the changed position is still due, the closed one still goes
    assert counts["published"] == 1, counts
    assert client.hget("quantum:risk:proposal:BTCUSDT", "position_current_price") == "101.5"
    assert not client.exists("quantum:risk:proposal:SOLUSDT")


def test_writes_redis_refuses_are_raised_and_stay_due(redis_server: RedisServer) -> None:
    client = redis.Redis(port=redis_server.port, decode_responses=True)
    position(client, "BTCUSDT", side="LONG", entry_price=100, current_price=101, peak_price=101)
    market(client, "BTCUSDT")
    daemon = kernel(redis_server, QTCTL__RISK__PUBLISH_INTERVAL_SEC="600")
    client.config_set("maxmemory", "1")  # every write is refused with OOM; reads still work
    with pytest.raises(redis.ResponseError, match="OOM"):
        daemon.cycle()
    assert not client.exists("quantum:risk:proposal:BTCUSDT") and not daemon.published
    client.config_set("maxmemory", "0")
    assert daemon.cycle()["published"] == 1  # still due, although the interval has not passed
    assert client.hget("quantum:risk:proposal:BTCUSDT", "trading_state") == "active"
