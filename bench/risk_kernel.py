"""Risk kernel: vectorised proposals against the same formulas in a per-position Python loop,
and one full cycle (read, compute, publish) for 1,000 positions against a real redis-server."""

from __future__ import annotations

import math
import random
import sys

import numpy as np
import redis

from bench.harness import Comparison, interleave
from qtctl.config import load_config
from qtctl.daemons.risk_kernel.kernel import Inputs, compute

N = 10_000


def inputs(n: int, seed: int = 3) -> Inputs:
    rng = np.random.default_rng(seed)
    price = rng.uniform(1, 50_000, n)
    side = rng.choice([-1.0, 1.0], n)
    nan = np.full(n, np.nan)
    return Inputs(
        side=side,
        price=price,
        entry=price * rng.uniform(0.95, 1.05, n),
        peak=price * (1 + side * rng.uniform(0, 0.03, n)),
        sigma=rng.uniform(0.001, 0.05, n),
        trend=rng.uniform(0, 1, n),
        weights=rng.dirichlet([1, 1, 1], n),
        prev_sl=nan,
        prev_tp=nan,
        liquidation=nan,
    )


def python_loop(x: Inputs) -> list[tuple[float, float]]:
    """The same formulas, one position at a time (what the old publisher did)."""
    out = []
    for i in range(len(x.price)):
        s, price, entry, peak = x.side[i], x.price[i], x.entry[i], x.peak[i]
        w = [max(0.0, v) for v in x.weights[i]]
        total = sum(w)
        if not all(map(math.isfinite, (s, price, entry, peak, x.sigma[i]))) or total <= 0:
            out.append((math.nan, math.nan))
            continue
        pt, pmr, pch = (v / total for v in w)
        sigma, trend = x.sigma[i], min(1.0, max(0.0, x.trend[i]))
        stop = max(0.005, (1.5 * pt + 0.8 * pmr + 1.0 * pch) * sigma)
        gate = min(1, max(0, (pt - 0.3) / 0.1)) * min(1, max(0, (trend - 0.1) / 0.1))
        ext = 1 + min(0.3, 0.5 * trend * pt * gate)
        tp = max(0.01, (2.5 * pt + 1.2 * pmr + 1.5 * pch) * sigma * ext)
        trail = max(0.005, (1.2 * pt + 1.5 * pmr + 1.3 * pch) * sigma)
        best = max(peak, price) if s > 0 else min(peak, price)
        initial = entry * (1 - s * stop)  # from the entry, trailing from the best price
        profit = s * (best - entry) / entry
        sl = best * (1 - s * (trail if profit > 0 else stop))
        if s * (initial - sl) > 0:
            sl = initial
        prev_sl, prev_tp, liq = x.prev_sl[i], x.prev_tp[i], x.liquidation[i]
        if math.isfinite(prev_sl) and prev_sl > 0 and s * (prev_sl - sl) > 0:
            sl = prev_sl  # never loosen
        if math.isfinite(liq) and liq > 0 and s * (liq * (1 + s * 0.01) - sl) > 0:
            sl = liq * (1 + s * 0.01)
        held = math.isfinite(prev_tp) and prev_tp > 0
        take = prev_tp if held else entry * (1 + s * min(tp, 0.5))  # fixed at entry, capped
        gap = 0.001 * price
        exit_now = s * (price - sl) <= gap or s * (take - price) <= gap
        sane = math.isfinite(sl) and math.isfinite(take) and sl > 0 and take > 0
        out.append((math.nan, math.nan) if exit_now or not sane else (sl, take))
    return out


def run(rounds: int = 15) -> list[Comparison]:
    x = inputs(N)
    cand, base = interleave(lambda: compute(x), lambda: python_loop(x), max(3, rounds))
    rows = [
        Comparison(
            name=f"risk proposals, {N} positions (compute only)",
            candidate="numpy, all positions at once",
            baseline="the same rules (entry stop, trail, ratchet, liquidation, exits), Python loop",
            target="<= 20 ms and >= 20x faster",
            candidate_times=cand,
            baseline_times=base,
        )
    ]
    return [*rows, _cycle(rounds)]


def seed(client: redis.Redis, n: int = 1000) -> None:
    """`n` positions and their market state, as the fleet writes them."""
    rng = random.Random(5)
    pipe = client.pipeline(transaction=False)
    for i in range(n):
        price = rng.uniform(1, 50_000)
        pipe.hset(
            f"quantum:state:positions:S{i:04d}USDT",
            mapping={
                "side": rng.choice(["LONG", "SHORT"]),
                "entry_price": price,
                "current_price": price * 1.001,
                "peak_price": price * 1.002,
                "trough_price": price * 0.998,
                "qty": 1,
            },
        )
        pipe.hset(
            f"quantum:marketstate:S{i:04d}USDT",
            mapping={"sigma": 0.01, "ts": 0.4, "p_trend": 0.5, "p_mr": 0.3, "p_chop": 0.2},
        )
    pipe.execute()


def _cycle(rounds: int) -> Comparison:
    sys.path.insert(0, ".")
    from qtctl.daemons.risk_kernel.daemon import RiskKernel
    from tests.support.redis_server import start_redis

    server = start_redis()
    try:
        client = redis.Redis(port=server.port, decode_responses=True)
        seed(client)
        config = load_config(
            None,
            env={"QTCTL__REDIS__URL": server.url, "QTCTL__RISK__PUBLISH_INTERVAL_SEC": "0.1"},
        )
        kernel = RiskKernel(config)
        kernel.setup()
        symbols = [f"S{i:04d}USDT" for i in range(1000)]

        def full_cycle() -> None:
            for symbol in kernel.published:  # every proposal due (the worst case) ...
                kernel.published[symbol] = ("", 0.0)
            kernel.scanned_at = 0.0  # ... and every position found again with SCAN
            assert kernel.cycle()["published"] == 1000

        def per_position() -> None:
            for symbol in symbols:  # one round trip per read and per write
                client.hgetall(f"quantum:state:positions:{symbol}")
                client.hgetall(f"quantum:marketstate:{symbol}")
                client.hset(f"bench:proposal:{symbol}", mapping={"stop_loss": "1"})

        cand, base = interleave(full_cycle, per_position, max(3, rounds // 2))
    finally:
        server.stop()
    return Comparison(
        name="risk kernel cycle, 1000 positions, real Redis (read, compute, publish all)",
        candidate="RiskKernel.cycle (1 HMGET pipeline + chunked writes, caller-packed RESP)",
        baseline="per-position round trips: 2 HGETALL + 1 HSET each, no maths",
        target="< 50 ms",
        candidate_times=cand,
        baseline_times=base,
    )


# The cycle against the kernel of another revision: two source trees cannot share one process
# (same module names), so each run is a child process, alternating, and each reports the
# quietest of its cycles (wall and its own CPU).
CHILD = """
import sys, time
root = sys.argv[1]
sys.path.insert(0, root)
import qtctl.daemons
qtctl.daemons.__path__[:] = [root + "/daemons"]
import redis
from bench.risk_kernel import seed
from qtctl.config import load_config
from qtctl.daemons.risk_kernel.daemon import RiskKernel
from tests.support.redis_server import start_redis
server = start_redis()
try:
    seed(redis.Redis(port=server.port, decode_responses=True))
    env = {"QTCTL__REDIS__URL": server.url, "QTCTL__RISK__PUBLISH_INTERVAL_SEC": "0.1"}
    kernel = RiskKernel(load_config(None, env=env))
    kernel.setup()
    wall, cpu = [], []
    for i in range(int(sys.argv[2]) + 3):
        for symbol in kernel.published:
            kernel.published[symbol] = ("", 0.0)
        kernel.scanned_at = 0.0
        started, used = time.perf_counter(), time.process_time()
        assert kernel.cycle()["published"] == 1000
        if i >= 3:
            wall.append(time.perf_counter() - started)
            cpu.append(time.process_time() - used)
    print(min(wall), min(cpu))
finally:
    server.stop()
"""


def against(revision: str, runs: int = 5, cycles: int = 20) -> list[Comparison]:
    """This tree's cycle against `revision`'s (a temporary git worktree), `runs` alternations."""
    import subprocess
    import tempfile
    from pathlib import Path

    here = Path(__file__).resolve().parents[1]
    times: dict[str, list[tuple[float, float]]] = {"now": [], "then": []}
    with tempfile.TemporaryDirectory() as tmp:
        other = Path(tmp) / "tree"
        git = ["git", "-C", str(here), "worktree"]
        subprocess.run([*git, "add", "--detach", str(other), revision], check=True)
        try:
            for _ in range(runs):
                for name, root in (("now", here), ("then", other)):
                    argv = [sys.executable, "-c", CHILD, str(root), str(cycles)]
                    out = subprocess.run(argv, cwd=root, capture_output=True, text=True)
                    wall, cpu = map(float, out.stdout.split())
                    times[name].append((wall, cpu))
        finally:
            subprocess.run([*git, "remove", "--force", str(other)], check=True)
    return [
        Comparison(
            name=f"risk kernel cycle, 1000 positions, quietest of {cycles} ({kind})",
            candidate="RiskKernel.cycle in this tree",
            baseline=f"RiskKernel.cycle at {revision}",
            target="< 50 ms",
            candidate_times=tuple(t[k] for t in times["now"]),
            baseline_times=tuple(t[k] for t in times["then"]),
        )
        for k, kind in enumerate(("wall", "client CPU"))
    ]


if __name__ == "__main__":  # python -m bench.risk_kernel REVISION
    from bench.harness import table

    print(table(against(sys.argv[1])))
