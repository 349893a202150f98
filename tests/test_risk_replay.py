"""`qtctl risk replay`: the kernel's rules over recorded prices, from a CSV file or a Redis
stream, with the same exits the daemon publishes for the same path."""

from __future__ import annotations

import csv
import json
import time
from pathlib import Path

import pytest
import redis

from tests.conftest import REPO, run_cli
from tests.support.redis_server import RedisServer
from tests.test_risk_kernel import kernel, market, position

SAMPLE = REPO / "tests" / "data" / "risk_replay_sample.csv"


def replay(*args: str) -> dict[str, object]:
    res = run_cli("--format", "json", "risk", "replay", *args)
    assert res.returncode == 0, res.stderr
    doc: dict[str, object] = json.loads(res.stdout)
    return doc


def test_the_sample_file_exits_by_stop_trail_and_target() -> None:
    doc = replay(str(SAMPLE))
    assert doc["format"] == "qtctl.risk-replay/1" and doc["ticks"] == 33
    total, per = doc["total"], doc["symbols"]
    assert isinstance(total, dict) and isinstance(per, dict)
    assert total["exits"] == {"stop": 1, "trail": 1, "target": 1, "liquidation-near": 0, "open": 1}
    assert per["SOLUSDT"]["exits"]["stop"] == 1  # the short ran into its first stop
    assert per["SOLUSDT"]["worst_r"] == pytest.approx((150 - 152) / (150 * 0.0119))
    assert per["ETHUSDT"]["exits"]["trail"] == 1 and per["ETHUSDT"]["avg_r"] > 0
    assert per["BTCUSDT"]["exits"] == {
        "stop": 0,
        "trail": 0,
        "target": 1,
        "liquidation-near": 0,
        "open": 1,
    }
    assert per["SOLUSDT"]["avg_sec"] == 300 and per["SOLUSDT"]["mae_pct"] == pytest.approx(
        -100 * 2 / 150
    )


def test_two_parameter_sets_on_the_same_data() -> None:
    base = replay(str(SAMPLE))["total"]
    other = replay(str(SAMPLE), "--set", "tp_policy=none", "--set", "risk.stoploss_pct=3")["total"]
    assert isinstance(base, dict) and isinstance(other, dict)
    assert other["exits"]["target"] == 0 and other["exits"]["stop"] == 0  # 3 % is not reached
    assert other["trades"] == 3  # BTCUSDT's first position never closed: no second one


def test_a_stream_replays_as_the_file_does(redis_server: RedisServer) -> None:
    client = redis.Redis(port=redis_server.port, decode_responses=True)
    with SAMPLE.open() as handle:
        for row in csv.DictReader(handle):
            fields = {k: v for k, v in row.items() if v}
            if row["symbol"] == "ETHUSDT":  # the JSON-payload style of the fleet's event bus
                fields = {"payload": json.dumps(fields)}
            client.xadd("quantum:stream:prices", fields)
    from_stream = replay("stream:prices", "--redis-url", redis_server.url)
    assert from_stream["symbols"] == replay(str(SAMPLE))["symbols"]


def test_a_bad_file_is_a_usage_error(tmp_path: Path) -> None:
    bad = tmp_path / "p.csv"
    bad.write_text("timestamp,symbol,price\n1,BTCUSDT,abc\n")
    res = run_cli("risk", "replay", str(bad))
    assert res.returncode == 2
    assert res.stderr.startswith("qtctl: error: row 2: needs timestamp, symbol and a number")
    res = run_cli("risk", "replay", str(tmp_path / "missing.csv"))
    assert res.returncode == 2 and "no price file at" in res.stderr
    res = run_cli("risk", "replay", str(SAMPLE), "--set", "stoploss_pct")
    assert res.returncode == 2 and "--set takes name=value" in res.stderr


def test_the_replay_exits_where_the_daemon_does(redis_server: RedisServer) -> None:
    """The same path through Redis and the daemon: exit-now on the same tick, same reason."""
    client = redis.Redis(port=redis_server.port, decode_responses=True)
    with SAMPLE.open() as handle:
        path = [float(r["price"]) for r in csv.DictReader(handle) if r["symbol"] == "ETHUSDT"]
    daemon = kernel(redis_server)
    market(client, "ETHUSDT")
    states = []
    for price in path:
        position(client, "ETHUSDT", side="LONG", entry_price=2000, current_price=price)
        daemon.cycle()
        time.sleep(0.11)
        states.append(client.hget("quantum:risk:proposal:ETHUSDT", "trading_state"))
    first_exit = states.index("exit-now")
    assert path[first_exit] == 2002  # where the replay closed it (its avg R says so)
    proposal = client.hgetall("quantum:risk:proposal:ETHUSDT")
    assert proposal["exit_reason"] == "exit-stop-crossed" and proposal["exit_price"] == "2002"
    per = replay(str(SAMPLE))["symbols"]
    assert isinstance(per, dict)
    risk = 2000 * 0.0119
    assert per["ETHUSDT"]["avg_r"] == pytest.approx((2002 - 2000) / risk)


@pytest.mark.parametrize("extra", [(), ("--set", "tp_policy=none", "--set", "stoploss_pct=3")])
def test_the_docs_show_the_replay_as_it_prints(extra: tuple[str, ...]) -> None:
    res = run_cli(
        "risk", "replay", "tests/data/risk_replay_sample.csv", *extra, env={"COLUMNS": "110"}
    )
    assert res.returncode == 0, res.stderr
    command = " ".join(("$ qtctl risk replay tests/data/risk_replay_sample.csv", *extra))
    assert f"{command}\n{res.stdout}" in (REPO / "docs/daemons/risk-kernel.md").read_text()


def test_leverage_in_the_file_exits_near_the_liquidation(tmp_path: Path) -> None:
    prices = tmp_path / "p.csv"
    prices.write_text(
        "timestamp,symbol,price,open,leverage\n"
        "2026-01-01T00:00:00Z,BTCUSDT,100,LONG,125\n"
        "2026-01-01T00:01:00Z,BTCUSDT,100.2,,\n"
        "2026-01-01T00:00:00Z,ETHUSDT,100,SHORT,20\n"
        "2026-01-01T00:01:00Z,ETHUSDT,103,,\n"
    )
    per = replay(str(prices))["symbols"]
    assert isinstance(per, dict)
    assert per["BTCUSDT"]["exits"]["liquidation-near"] == 1 and per["BTCUSDT"]["avg_sec"] == 0
    # 20x short: liquidation near 104.5, its stop (1.1 %, at 101.1) well inside: the gap to 103
    # is a stop, filled at 103
    assert per["ETHUSDT"]["exits"]["stop"] == 1
    assert per["ETHUSDT"]["worst_r"] == pytest.approx(-3 / 1.1)


def test_a_bad_minimal_roi_is_a_config_error_naming_the_key() -> None:
    res = run_cli(
        "risk",
        "replay",
        str(SAMPLE),
        "--set",
        "tp_policy=minimal-roi",
        "--set",
        "minimal_roi=0=4,x",
    )
    assert res.returncode == 2
    assert "risk.minimal_roi" in res.stderr and "expected MINUTES=PCT, got 'x'" in res.stderr
