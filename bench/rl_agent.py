"""RL sizing agent: learning per market shape, decision latency, and backlog ingest, via Redis.

- learning: `qtctl run rl-agent` fed one trade at a time (request, decision, close) on each
  synthetic market of bench/rl_market.py; the served sizes' exact expected utility as a fraction
  of the optimum's, after 250, 500 and 1,000 trades (the learning curve in the README);
- latency: request XADD to the decision hash at 1,000 requests/s, against a responder that
  answers every request with a constant (the Redis + Python floor), side by side;
- ingest: a backlog of closed trades learned in batches of `rl.batch` against one at a time.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import redis

from bench.harness import Comparison
from bench.rl_market import Market, score

REQUESTS = "quantum:stream:rl.sizing.request"
CLOSED = "quantum:stream:trade.closed"
ECHO = """
import sys, redis
client = redis.Redis(port=int(sys.argv[1]))
last = "0-0"
while True:
    for _, entries in client.xread({"quantum:stream:rl.sizing.request": last}, block=100) or []:
        pipe = client.pipeline(transaction=False)
        for entry_id, fields in entries:
            last = entry_id
            pipe.hset(b"quantum:rl:decision:" + fields[b"decision_id"], "multiplier", "1")
        pipe.execute()
"""


def config(folder: Path, port: int, extra: str = "") -> Path:
    path = folder / "rl.toml"
    path.write_text(
        f"[redis]\nurl = 'redis://127.0.0.1:{port}/0'\n[rl]\nmodel_dir = '{folder / 'models'}'\n"
        "start_id = '0'\nconsumer = 'bench'\nblock_ms = 50\nstats_every_sec = 1\n" + extra
    )
    return path


def agent(path: Path) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "qtctl", "--config", str(path), "run", "rl-agent"]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def ask(client: redis.Redis, decision_id: str, fields: dict[str, str]) -> tuple[float, str]:
    """Seconds from the request XADD to the decision hash, and the multiplier."""
    started = time.perf_counter()
    client.xadd(REQUESTS, {"decision_id": decision_id, **fields})
    key = f"quantum:rl:decision:{decision_id}"
    while True:
        value: Any = client.hget(key, "multiplier")
        if value is not None:
            return time.perf_counter() - started, value.decode()
        if time.perf_counter() - started > 30:
            raise RuntimeError(f"no decision for {decision_id} within 30 s")


def learning_curve(
    client: redis.Redis, market: Market, checkpoints: tuple[int, ...]
) -> list[float]:
    """Fraction of the optimum served after each number of trades fed one at a time."""
    conf, vol = market.contexts(300, np.random.default_rng(999))
    out, trades = [], market.trades(max(checkpoints))
    for i, trade in enumerate(trades):
        context = {k: trade[k] for k in ("symbol", "side", "confidence", "volatility")}
        ask(client, f"{market.shape}{market.seed}-{i}", context)
        client.xadd(CLOSED, {**trade, "decision_id": f"{market.shape}{market.seed}-{i}"})
        if i + 1 in checkpoints:
            probe = [
                float(ask(client, f"p{i}-{j}", {"confidence": f"{c}", "volatility": f"{v}"})[1])
                for j, (c, v) in enumerate(zip(conf, vol, strict=True))
            ]
            out.append(score(market, np.asarray(probe), conf, vol)["fraction"])
    return out


def latencies(client: redis.Redis, tag: str, n: int, rate: float) -> list[float]:
    """n paced requests; the seconds each took to be answered."""
    out, period = [], 1 / rate
    started = time.perf_counter()
    for i in range(n):
        while time.perf_counter() < started + i * period:
            pass
        out.append(ask(client, f"{tag}{i}", {"confidence": "0.7", "volatility": "0.01"})[0])
    return out


def p99(values: list[float]) -> float:
    return float(np.percentile(values, 99))


def run(rounds: int = 3) -> list[Comparison]:
    import tempfile

    from tests.support.redis_server import start_redis

    rows = []
    for shape in ("step", "linear", "noisy", "null"):
        for seed in range(3):
            server = start_redis()
            try:
                with tempfile.TemporaryDirectory() as folder:
                    proc = agent(config(Path(folder), server.port))
                    client = redis.Redis(port=server.port)
                    curve = learning_curve(client, Market(shape, seed), (250, 500, 1000))
                    proc.terminate()
                    proc.wait()
                print(f"learning {shape} seed {seed}: fraction of optimum {curve}", flush=True)
            finally:
                server.stop()
    rows.append(_latency(rounds))
    rows.append(_ingest(rounds))
    return rows


def _latency(rounds: int) -> Comparison:
    import tempfile

    from tests.support.redis_server import start_redis

    cand: list[float] = []
    base: list[float] = []
    for r in range(max(rounds, 1)):
        for which, sink in (("agent", cand), ("echo", base)):
            server = start_redis()
            try:
                with tempfile.TemporaryDirectory() as folder:
                    if which == "agent":
                        proc = agent(config(Path(folder), server.port))
                    else:
                        proc = subprocess.Popen([sys.executable, "-c", ECHO, str(server.port)])
                    client = redis.Redis(port=server.port)
                    ask(client, "warm", {"confidence": "0.5"})  # started and answering
                    sink.append(p99(latencies(client, f"{which}{r}-", 3000, 1000.0)))
                    proc.terminate()
                    proc.wait()
            finally:
                server.stop()
    shown = statistics.median(cand) * 1e3, statistics.median(base) * 1e3
    print("decision p99: agent {:.3f} ms, constant responder {:.3f} ms".format(*shown))
    return Comparison(
        name="RL decision latency p99, request XADD to decision hash, 1,000 requests/s",
        candidate="qtctl run rl-agent",
        baseline="a responder writing a constant",
        target="p99 < 5 ms",
        candidate_times=tuple(cand),
        baseline_times=tuple(base),
    )


def _ingest(rounds: int) -> Comparison:
    """Backlog of 20,000 closed trades through `run rl-agent --once`, batch 256 against 1."""
    import tempfile

    from tests.support.redis_server import start_redis

    n = 20_000
    cand: list[float] = []
    base: list[float] = []
    for _ in range(max(rounds, 1)):
        for batch, sink in ((256, cand), (1, base)):
            server = start_redis()
            try:
                client = redis.Redis(port=server.port)
                pipe = client.pipeline(transaction=False)
                for trade in Market("step", 0).trades(n):
                    pipe.xadd(CLOSED, trade)
                pipe.execute()
                with tempfile.TemporaryDirectory() as folder:
                    path = config(Path(folder), server.port, f"batch = {batch}\n")
                    started = time.perf_counter()
                    command = [sys.executable, "-m", "qtctl", "--config", str(path), "run"]
                    subprocess.run(
                        [*command, "rl-agent", "--once"], check=True, capture_output=True
                    )
                    sink.append(time.perf_counter() - started)
                    assert client.hget("quantum:rl:agent:stats", "experiences") == str(n).encode()
            finally:
                server.stop()
    start = _startup_seconds()
    rates = n / statistics.median(cand), n / statistics.median(base)
    print(
        "ingest: {:.0f} trades/s in batches of 256 (start included), {:.0f}/s one by one".format(
            *rates
        )
    )
    print(
        f"ingest: the process start alone (an empty backlog) takes {start:.2f} s; without it "
        f"{n / max(statistics.median(cand) - start, 1e-9):.0f} trades/s in batches of 256"
    )
    return Comparison(
        name=f"RL ingest + learn, {n:,} closed trades waiting (run rl-agent --once)",
        candidate="batches of 256",
        baseline="one trade per read",
        target=">= 5,000 trades/s",
        candidate_times=tuple(cand),
        baseline_times=tuple(base),
    )


def _startup_seconds(rounds: int = 3) -> float:
    """`run rl-agent --once` on an empty backlog: imports (torch), config, connect, exit."""
    import tempfile

    from tests.support.redis_server import start_redis

    times = []
    server = start_redis()
    try:
        with tempfile.TemporaryDirectory() as folder:
            path = config(Path(folder), server.port, "batch = 256\n")
            command = [sys.executable, "-m", "qtctl", "--config", str(path), "run", "rl-agent"]
            for _ in range(rounds):
                started = time.perf_counter()
                subprocess.run([*command, "--once"], check=True, capture_output=True)
                times.append(time.perf_counter() - started)
    finally:
        server.stop()
    return statistics.median(times)
