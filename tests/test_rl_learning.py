"""The sizing agent learns the right size per context, through Redis and `qtctl run rl-agent`.

Each trade goes as the fleet sends it: a sizing request, the decision read back, then the closed
trade naming the decision, one at a time. The served sizes are scored by their exact expected
utility on the synthetic market (bench/rl_market.py), against always-1.0 and the optimum.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import redis

from bench.rl_market import Market, score
from tests.conftest import REPO
from tests.support.redis_server import RedisServer

REQUESTS = "quantum:stream:rl.sizing.request"
CLOSED = "quantum:stream:trade.closed"


def write_config(tmp_path: Path, url: str, extra: str = "") -> Path:
    config = tmp_path / "rl.toml"
    config.write_text(
        f"[redis]\nurl = '{url}'\n[rl]\nmodel_dir = '{tmp_path / 'models'}'\nstart_id = '0'\n"
        "consumer = 'rl-1'\nblock_ms = 50\ncheckpoint_every = 50\nstats_every_sec = 1\n" + extra
    )
    return config


def start_agent(tmp_path: Path, url: str, extra: str = "") -> tuple[subprocess.Popen[str], Path]:
    config = write_config(tmp_path, url, extra)
    proc = subprocess.Popen(
        [sys.executable, "-m", "qtctl", "--config", str(config), "run", "rl-agent"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    return proc, config


def ask(client: redis.Redis, decision_id: str, fields: dict[str, str]) -> dict[str, str]:
    """A sizing request as the executor sends it, and the decision it gets back."""
    client.xadd(REQUESTS, {"decision_id": decision_id, **fields})
    deadline = time.monotonic() + 10
    while True:
        decision = client.hgetall(f"quantum:rl:decision:{decision_id}")
        if decision:
            return decision
        assert time.monotonic() < deadline, f"no decision for {decision_id}"
        time.sleep(0.0005)


def trickle(client: redis.Redis, market: Market, n: int) -> list[dict[str, str]]:
    """n trades, each asked for, then closed with its decision id."""
    decisions = []
    for i, trade in enumerate(market.trades(n)):
        context = {k: trade[k] for k in ("symbol", "side", "confidence", "volatility")}
        decisions.append(ask(client, f"t{i}", context))
        closed = {k: v for k, v in trade.items() if k not in ("confidence", "volatility")}
        client.xadd(
            CLOSED, {**closed, "decision_id": f"t{i}"}
        )  # the context comes from the decision
    return decisions


def learned_everything(client: redis.Redis, closed: int) -> None:
    """Wait until the agent has read every closed trade, then once more for one answer: a
    request read with the last closes is answered first (latency), from the model before them;
    the one after that comes from the model that learned them all."""
    deadline = time.monotonic() + 30
    while True:
        groups = client.xinfo_groups(CLOSED)
        if groups and int(groups[0].get("entries-read") or 0) >= closed:
            break
        assert time.monotonic() < deadline, f"the agent did not read {closed} closed trades"
        time.sleep(0.01)
    ask(client, "sync", {"confidence": "0.5", "volatility": "0.01"})


def served(
    client: redis.Redis, market: Market, n: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Ask for n fresh contexts (nothing closes): the sizes the agent now serves."""
    learned_everything(client, client.xlen(CLOSED))
    conf, vol = market.contexts(n, np.random.default_rng(999))
    sizes = [
        float(
            ask(client, f"e{i}", {"confidence": f"{c:.6f}", "volatility": f"{v:.6f}"})["multiplier"]
        )
        for i, (c, v) in enumerate(zip(conf, vol, strict=True))
    ]
    return np.asarray(sizes), conf, vol


def stop(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=20) == 0, proc.stderr.read() if proc.stderr else ""


@pytest.mark.parametrize(
    ("shape", "seed", "least"), [("step", 3, 0.9), ("linear", 1, 0.9), ("noisy", 1, 0.9)]
)
def test_served_sizes_reach_the_optimum_within_1000_trades_fed_one_at_a_time(
    redis_server: RedisServer, tmp_path: Path, shape: str, seed: int, least: float
) -> None:
    client = redis.Redis(port=redis_server.port, decode_responses=True)
    proc, _ = start_agent(tmp_path, redis_server.url)
    market = Market(shape, seed)
    try:
        decisions = trickle(client, market, 1000)
        sizes, conf, vol = served(client, market, 300)
    finally:
        stop(proc)
    result = score(market, sizes, conf, vol)
    assert result["fraction"] >= least, result
    assert result["policy"] - result["always_one"] > 0.5 * (
        result["optimum"] - result["always_one"]
    )
    first = decisions[0]
    assert (first["multiplier"], first["probability"], first["reason"]) == ("1", "1", "cold-start")
    assert all(d["probability"] == "1" for d in decisions)  # no exploration: drawn with p = 1
    assert client.xlen("quantum:stream:rl.decisions") == 1301  # and the one that waited


def test_no_feature_predicts_the_return_so_one_size_is_served_everywhere(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    client = redis.Redis(port=redis_server.port, decode_responses=True)
    proc, _ = start_agent(tmp_path, redis_server.url)
    market = Market("null", 0)
    try:
        trickle(client, market, 1000)
        sizes, conf, vol = served(client, market, 200)
    finally:
        stop(proc)
    assert len(set(sizes.tolist())) == 1, sorted(set(sizes.tolist()))
    best = market.optimum(conf[:1], vol[:1])[0]  # the same everywhere in this market
    assert abs(sizes[0] - best) <= 0.25, (sizes[0], best)


def log_decisions(
    client: redis.Redis, market: Market, n: int, logged_with_probability: bool = True
) -> float:
    """n decisions of an epsilon-greedy logger (exact probabilities) and their closed trades;
    returns the true value of always 1.5 on this market."""
    rng = np.random.default_rng(market.seed + 50)
    trades = market.trades(n)
    greedy = np.where(np.asarray([float(t["confidence"]) for t in trades]) > 0.5, 1.5, 0.5)
    explore = rng.random(n) < 0.5
    grid = np.asarray((0.25, 0.5, 0.75, 1.0, 1.25, 1.5))
    drawn = np.where(explore, rng.choice(grid, n), greedy)
    pipe = client.pipeline(transaction=False)
    for i, trade in enumerate(trades):
        p = 0.5 / 6 + 0.5 * (drawn[i] == greedy[i])
        features = f'{{"confidence": {trade["confidence"]}, "volatility": {trade["volatility"]}}}'
        decision = {"decision_id": f"d{i}", "multiplier": f"{drawn[i]:g}", "features": features}
        if logged_with_probability:
            decision["probability"] = f"{p:.17g}"
        pipe.xadd("quantum:stream:rl.decisions", decision)
        pipe.xadd(CLOSED, {**trade, "decision_id": f"d{i}"})
    pipe.execute()
    conf, vol = market.contexts(200_000, np.random.default_rng(7))
    return float(market.utility(np.full_like(conf, 1.5), conf, vol).mean())


def evaluate(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "qtctl", "--config", str(config), "rl", "evaluate", *args]
    return subprocess.run([*command, "--format", "json"], capture_output=True, text=True, cwd=REPO)


def test_evaluate_covers_the_true_value_of_a_known_policy_on_held_out_data(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    import json

    client = redis.Redis(port=redis_server.port, decode_responses=True)
    config = write_config(tmp_path, redis_server.url)
    covered = {"replay_value": 0, "ips_value": 0, "snips_value": 0, "dr_value": 0}
    for seed in range(10):
        client.flushdb()
        truth = log_decisions(client, Market("linear", seed), 3000)
        res = evaluate(config, "--policy", "constant:1.5")
        assert res.returncode == 0, res.stderr
        doc = json.loads(res.stdout)
        assert (doc["train"], doc["held_out"]) == (1500, 1500)
        for name in covered:
            covered[name] += doc[name]["low"] <= truth <= doc[name]["high"]
    assert all(n >= 9 for n in covered.values()), covered
    client.flushdb()
    log_decisions(client, Market("linear", 0), 200, logged_with_probability=False)
    res = evaluate(config)
    doc = json.loads(res.stdout)
    assert doc["ips_refused"] == "100 of 100 held-out decisions carry no true propensity"
    assert "ips_value" not in doc and "replay_value" in doc
