"""The risk kernel as a trader uses it, through a real redis-server and the daemon: stops anchored
to the entry, a ratchet that survives partial closes, lost hashes and restarts, the position's
own stop as a floor, latched exits, capped targets, leverage, the sweep on start, the counters,
and input ages."""

from __future__ import annotations

import json
import logging
import math
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis

from qtctl.daemons.risk_kernel import inputs, kernel
from tests.conftest import REPO
from tests.support.redis_server import RedisServer
from tests.test_risk_kernel import STREAM, market, position
from tests.test_risk_kernel import kernel as make_kernel

PROPOSAL = "quantum:risk:proposal:"
STATS = "quantum:risk:kernel:stats"
# Weights 0.5/0.3/0.2, sigma 1 %: stop 1.19 %, trail 1.31 %, target 2.149 % (ext 1.125).
STOP, TRAIL, TARGET = 0.0119, 0.0131, 0.0191 * 1.125


@pytest.fixture
def client(redis_server: RedisServer) -> redis.Redis:
    return redis.Redis(port=redis_server.port, decode_responses=True)


def proposal(client: redis.Redis, symbol: str = "BTCUSDT") -> dict[str, str]:
    return client.hgetall(PROPOSAL + symbol)


def long(client: redis.Redis, price: float, symbol: str = "BTCUSDT", **extra: object) -> None:
    fields = {"side": "LONG", "entry_price": 100, "current_price": price, "qty": 1}
    position(client, symbol, **(fields | extra))


def test_the_first_stop_is_a_distance_from_the_entry_not_from_the_price(
    redis_server: RedisServer, client: redis.Redis
) -> None:
    long(client, 99.5)
    market(client, "BTCUSDT")
    long(client, 90, symbol="ETHUSDT")  # first seen 10 % under water
    market(client, "ETHUSDT")
    make_kernel(redis_server).cycle()
    got = proposal(client)
    assert got["trading_state"] == "active"
    assert float(got["stop_loss"]) == pytest.approx(100 * (1 - STOP))
    assert float(got["stop_dist_pct"]) == pytest.approx(STOP * 100)
    under = proposal(client, "ETHUSDT")
    assert under["trading_state"] == "exit-now" and under["exit_reason"] == "exit-stop-crossed"
    assert "stop_loss" not in under  # never a stop 11 % below the entry


def test_stoploss_pct_is_freqtrades_ratio_of_the_open_rate_on_margin(
    redis_server: RedisServer, client: redis.Redis
) -> None:
    long(client, 100.2)
    long(client, 100.2, symbol="ETHUSDT", leverage=10)
    for symbol in ("BTCUSDT", "ETHUSDT"):
        market(client, symbol)
    daemon = make_kernel(
        redis_server, QTCTL__RISK__STOPLOSS_PCT="10", QTCTL__RISK__TRAILING_STOP="false"
    )
    daemon.cycle()
    assert float(proposal(client)["stop_loss"]) == pytest.approx(90)
    assert float(proposal(client, "ETHUSDT")["stop_loss"]) == pytest.approx(99)  # 10 % / 10x


def test_a_partial_close_a_lost_hash_and_a_restart_never_loosen_the_stop(
    redis_server: RedisServer, client: redis.Redis
) -> None:
    long(client, 102, peak_price=102, qty=2)
    market(client, "BTCUSDT")
    make_kernel(redis_server).cycle()
    trailed = float(proposal(client)["stop_loss"])
    assert trailed == pytest.approx(102 * (1 - TRAIL))
    long(client, 101.5, peak_price=101.5, qty=1)  # half closed; the snapshot's peak moved back
    market(client, "BTCUSDT", sigma=0.03)  # and the stop would be wider now
    make_kernel(redis_server).cycle()
    assert float(proposal(client)["stop_loss"]) >= trailed
    client.delete(PROPOSAL + "BTCUSDT")  # the hash is lost too
    make_kernel(redis_server).cycle()
    again = proposal(client)
    assert float(again["stop_loss"]) >= trailed and again["seq"] == "3"
    assert "sl-held" in again["reasons"]


def test_the_positions_own_stop_is_a_floor(redis_server: RedisServer, client: redis.Redis) -> None:
    long(client, 100.5, current_sl=99.8)
    position(client, "ETHUSDT", side="SHORT", entry_price=100, current_price=99.5, current_sl=100.2)
    for symbol in ("BTCUSDT", "ETHUSDT"):
        market(client, symbol)
    make_kernel(redis_server).cycle()
    got, short = proposal(client), proposal(client, "ETHUSDT")
    assert float(got["stop_loss"]) == pytest.approx(99.8) and "sl-current-held" in got["reasons"]
    assert float(short["stop_loss"]) == pytest.approx(100.2)  # a ceiling for a short


def test_a_new_position_id_is_a_new_position(
    redis_server: RedisServer, client: redis.Redis
) -> None:
    long(client, 102, peak_price=102, position_id="a")
    market(client, "BTCUSDT")
    daemon = make_kernel(redis_server)
    daemon.cycle()
    assert float(proposal(client)["stop_loss"]) > 100
    client.delete("quantum:state:positions:BTCUSDT")  # closed and reopened between two cycles
    long(client, 100.5, position_id="b")
    time.sleep(0.11)
    daemon.cycle()
    fresh = proposal(client)
    assert float(fresh["stop_loss"]) == pytest.approx(100.5 * (1 - TRAIL)) and fresh["seq"] == "1"


def test_exit_now_is_latched_with_its_first_reason_price_and_time(
    redis_server: RedisServer, client: redis.Redis
) -> None:
    long(client, 100)
    market(client, "BTCUSDT")
    daemon = make_kernel(redis_server)
    daemon.cycle()
    seen = []
    for price in (103, 102.5, 101.8, 100.4):
        long(client, price, peak_price=103)
        time.sleep(0.11)
        daemon.cycle()
        seen.append(proposal(client))
    assert [p["trading_state"] for p in seen] == ["exit-now"] * 4
    assert {(p["exit_reason"], p["exit_price"], p["exit_at"]) for p in seen} == {
        ("exit-tp-reached", "103", seen[0]["exit_at"])
    }
    assert "stop_loss" not in seen[-1] and "latched" in seen[-1]["reasons"]
    restarted = make_kernel(redis_server)  # a restart keeps the latch
    client.delete(PROPOSAL + "BTCUSDT")
    restarted.cycle()
    assert proposal(client)["exit_reason"] == "exit-tp-reached"
    client.delete("quantum:state:positions:BTCUSDT")  # gone: the exit goes with it
    time.sleep(0.11)
    restarted.cycle()
    assert not client.exists(PROPOSAL + "BTCUSDT")
    stats = client.hgetall(STATS)
    assert stats["exit:exit-tp-reached"] == "1"  # one exit, however often it was republished


@pytest.mark.parametrize("sigma", [0.3, 0.45, 2.0])
def test_a_shorts_target_stays_above_zero_and_it_always_has_a_stop(
    redis_server: RedisServer, client: redis.Redis, sigma: float
) -> None:
    position(client, "ETHUSDT", side="SHORT", entry_price=100, current_price=100)
    market(client, "ETHUSDT", sigma=sigma)
    counts = make_kernel(redis_server).cycle()
    got = proposal(client, "ETHUSDT")
    assert counts["published"] == 1 and got["trading_state"] == "active"
    assert 50 <= float(got["take_profit"]) < 100 < float(got["stop_loss"]) <= 150


def test_no_target_policy_publishes_the_stop_alone(
    redis_server: RedisServer, client: redis.Redis
) -> None:
    long(client, 100.5)
    market(client, "BTCUSDT")
    make_kernel(redis_server, QTCTL__RISK__TP_POLICY="none").cycle()
    got = proposal(client)
    assert got["trading_state"] == "active" and got["take_profit"] == ""
    assert float(got["stop_loss"]) > 0 and "no-target" in got["reasons"]


def test_minimal_roi_lowers_the_target_with_age(
    redis_server: RedisServer, client: redis.Redis
) -> None:
    long(client, 100.5, age_sec=10)
    long(client, 100.5, symbol="ETHUSDT", age_sec=4000)
    for symbol in ("BTCUSDT", "ETHUSDT"):
        market(client, symbol)
    make_kernel(redis_server, QTCTL__RISK__TP_POLICY="minimal-roi").cycle()
    assert float(proposal(client)["take_profit"]) == pytest.approx(104)  # 0=4
    assert float(proposal(client, "ETHUSDT")["take_profit"]) == pytest.approx(101)  # 60=1


def test_leverage_without_a_liquidation_price_keeps_the_stop_inside_the_estimate(
    redis_server: RedisServer, client: redis.Redis
) -> None:
    long(client, 100, leverage=50)
    long(client, 100, symbol="ETHUSDT", leverage=125)
    for symbol in ("BTCUSDT", "ETHUSDT"):
        market(client, symbol, sigma=0.02)
    make_kernel(redis_server).cycle()
    got = proposal(client)
    liquidation = 100 * (1 - 1 / 50 + 0.005)
    assert float(got["stop_loss"]) == pytest.approx(liquidation * 1.01)
    assert {"liq-buffer", "liq-estimated"} <= set(got["reasons"].split(","))
    too_high = proposal(client, "ETHUSDT")
    assert too_high["trading_state"] == "exit-now"
    assert too_high["exit_reason"] == "exit-liquidation-near"
    assert "leverage-too-high" in too_high["reasons"]


def test_the_start_sweeps_proposals_of_positions_that_do_not_exist(
    redis_server: RedisServer, client: redis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    client.hset(
        PROPOSAL + "BTCUSDT", mapping={"proposed_sl": "106.1072", "proposed_tp": "106.0695"}
    )
    client.hset(PROPOSAL + "ETHUSDT", mapping={"proposed_sl": "1"})
    client.hset("quantum:risk:kernel:state", mapping={"SOLUSDT": "s1|left over"})
    long(client, 100.5, symbol="ETHUSDT")
    market(client, "ETHUSDT")
    with caplog.at_level(logging.WARNING, "qtctl.risk_kernel"):
        make_kernel(redis_server).cycle()
    assert not client.exists(PROPOSAL + "BTCUSDT")  # published by no one this process knows
    assert proposal(client, "ETHUSDT")["trading_state"] == "active"
    assert client.hkeys("quantum:risk:kernel:state") == ["ETHUSDT"]
    assert f"deleted proposal {PROPOSAL}BTCUSDT: no such position" in caplog.text


def test_invariant_rejects_count_as_invariant_and_qt501_reports_them(
    redis_server: RedisServer,
    client: redis.Redis,
    monkeypatch: pytest.MonkeyPatch,
    isolated_env: Path,
) -> None:
    long(client, 100.5)
    long(client, 100.5, symbol="ETHUSDT", liquidation_price="n/a")
    for symbol in ("BTCUSDT", "ETHUSDT"):
        market(client, symbol)
    real = kernel._floors
    monkeypatch.setattr(kernel, "_floors", lambda x, r, sl, bits: real(x, r, sl * math.nan, bits))
    counts = make_kernel(redis_server).cycle()  # a bug that loses the stop
    assert counts["rejected_invariant"] == 1 and counts["rejected_input"] == 1
    assert proposal(client)["held_reason"] == "invariant"
    assert proposal(client, "ETHUSDT")["held_reason"] == "malformed liquidation_price 'n/a'"
    stats = client.hgetall(STATS)
    assert stats["held:invariant"] == "1" and stats["held:malformed-input"] == "1"
    assert stats["rejected_invariant"] == "1" and stats["held"] == "2"
    isolated_env.write_text(f"[redis]\nurl = '{redis_server.url}'\n")
    res = subprocess.run(
        [sys.executable, "-m", "qtctl", "--format", "json", "doctor", "--select", "QT501"],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    found = {f["cause"]: f for f in json.loads(res.stdout)["findings"]}
    assert found["kernel-rejected"]["message"].startswith("the risk kernel rejected 1 proposal")
    assert "held:malformed-input 1" in found["kernel-rejected"]["detail"]


def test_a_stale_price_is_held_with_its_age(
    redis_server: RedisServer, client: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    long(client, 100.5, updated_at=time.time() - 300)
    long(client, 100.5, symbol="ETHUSDT")  # no time field: aged from its last change
    for symbol in ("BTCUSDT", "ETHUSDT"):
        market(client, symbol)
    daemon = make_kernel(redis_server)
    daemon.cycle()
    held = proposal(client)
    assert held["trading_state"] == "held"
    assert held["held_reason"].startswith("position price is 300 s old, by its time field")
    assert proposal(client, "ETHUSDT")["trading_state"] == "active"
    later = time.time() + 200
    monkeypatch.setattr(inputs, "now", lambda: later)
    daemon.cycle()
    stale = proposal(client, "ETHUSDT")
    assert stale["trading_state"] == "held" and "s old, unchanged" in stale["held_reason"]
    assert float(stale["stop_loss"]) > 0  # the last valid proposal stands
    assert client.hget(STATS, "held:price-stale") == "3"  # BTCUSDT twice, ETHUSDT once


def test_every_published_proposal_goes_to_the_log_with_its_exit_fields(
    redis_server: RedisServer, client: redis.Redis
) -> None:
    long(client, 90)
    market(client, "BTCUSDT")
    make_kernel(redis_server).cycle()
    ((_, entry),) = client.xrange(STREAM)
    payload = json.loads(entry["payload"])
    assert payload["exit_reason"] == "exit-stop-crossed" and payload["exit_price"] == "90"


def test_a_lost_state_hash_falls_back_on_the_proposal(
    redis_server: RedisServer, client: redis.Redis
) -> None:
    long(client, 102, peak_price=102, position_id="p1")
    long(client, 90, symbol="ETHUSDT", position_id="p2")  # exit-now
    for symbol in ("BTCUSDT", "ETHUSDT"):
        market(client, symbol)
    make_kernel(redis_server).cycle()
    trailed = float(proposal(client)["stop_loss"])
    client.delete("quantum:risk:kernel:state")  # the memory is gone, the proposals are not
    long(client, 101, peak_price=101, position_id="p1")
    long(client, 99.5, symbol="ETHUSDT", position_id="p2")  # back above its stop
    make_kernel(redis_server).cycle()
    got = proposal(client)
    assert float(got["stop_loss"]) >= trailed and "sl-held" in got["reasons"]
    assert got["seq"] == "2"
    latched = proposal(client, "ETHUSDT")
    assert latched["trading_state"] == "exit-now" and latched["exit_price"] == "90"


def test_trailing_only_once_the_offset_is_reached_then_at_the_positive_distance(
    redis_server: RedisServer, client: redis.Redis
) -> None:
    daemon = make_kernel(
        redis_server,
        QTCTL__RISK__TRAILING_STOP_POSITIVE="0.5",
        QTCTL__RISK__TRAILING_STOP_POSITIVE_OFFSET="3",
        QTCTL__RISK__TRAILING_ONLY_OFFSET_IS_REACHED="true",
        QTCTL__RISK__TP_POLICY="none",
    )
    market(client, "BTCUSDT")
    long(client, 102, peak_price=102)
    daemon.cycle()
    before = proposal(client)
    assert float(before["stop_loss"]) == pytest.approx(100 * (1 - STOP))  # 2 % < the offset
    assert float(before["trailing_activation"]) == pytest.approx(103)
    long(client, 103.5, peak_price=103.5)
    daemon.cycle()
    after = proposal(client)
    assert float(after["stop_loss"]) == pytest.approx(103.5 * 0.995)
    assert float(after["trailing_stop"]) == pytest.approx(103.5 * 0.995)
    assert "trail-active" in after["reasons"]


def test_a_position_id_that_flips_side_is_a_new_position(
    redis_server: RedisServer, client: redis.Redis
) -> None:
    long(client, 102, peak_price=102, position_id="p1")
    market(client, "BTCUSDT")
    daemon = make_kernel(redis_server)
    daemon.cycle()
    position(client, "BTCUSDT", side="SHORT", entry_price=102, current_price=102)
    client.hdel("quantum:state:positions:BTCUSDT", "peak_price")
    time.sleep(0.11)
    daemon.cycle()
    flipped = proposal(client)
    assert flipped["trading_state"] == "active" and flipped["seq"] == "1"
    assert float(flipped["stop_loss"]) == pytest.approx(102 * (1 + STOP))


def test_a_position_closed_while_held_takes_its_proposal_with_it(
    redis_server: RedisServer, client: redis.Redis
) -> None:
    long(client, 100.5, liquidation_price="n/a")
    market(client, "BTCUSDT")
    daemon = make_kernel(redis_server)
    daemon.cycle()
    assert proposal(client)["trading_state"] == "held"
    client.delete("quantum:state:positions:BTCUSDT")
    daemon.cycle()
    assert not client.exists(PROPOSAL + "BTCUSDT")


def test_a_state_key_of_the_wrong_type_holds_every_position(
    redis_server: RedisServer, client: redis.Redis
) -> None:
    long(client, 100.5)
    market(client, "BTCUSDT")
    client.set("quantum:risk:kernel:state", "not a hash")
    counts = make_kernel(redis_server).cycle()
    assert counts["published"] == 0 and counts["rejected_input"] == 1
    held = proposal(client)
    assert held["trading_state"] == "held" and "WRONGTYPE" in held["held_reason"]
