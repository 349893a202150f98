"""RL agent ingest + learn: validated records learned in batches against one record at a time."""

from __future__ import annotations

import random

import numpy as np

from bench.harness import Comparison, interleave
from qtctl.daemons.rl_agent.daemon import parse_sources
from qtctl.daemons.rl_agent.policy import Policy
from qtctl.daemons.rl_agent.records import experience

N = 5_000
ACTIONS = (0.25, 0.5, 0.75, 1.0, 1.25, 1.5)


def records(n: int) -> list[dict[str, str]]:
    rng = random.Random(3)
    out = []
    for i in range(n):
        entry = rng.uniform(10, 1000)
        exit_ = entry * (1 + rng.uniform(-0.03, 0.03))
        out.append(
            {
                "symbol": "BTCUSDT",
                "side": "LONG",
                "entry_price": f"{entry:.6f}",
                "exit_price": f"{exit_:.6f}",
                "pnl_percent": f"{(exit_ - entry) / entry * 100:.6f}",
                "source": "executor",
                "order_id": f"o{i}",
                "confidence": "0.6",
            }
        )
    return out


def ingest(data: list[dict[str, str]], policy: Policy, batch: int) -> None:
    sources = parse_sources(("*=pnl_percent:percent",))
    for start in range(0, len(data), batch):
        exps = [experience(r, sources) for r in data[start : start + batch]]
        policy.learn(
            np.asarray([e.features for e in exps]),
            np.asarray([e.multiplier for e in exps]),
            np.clip(np.asarray([e.pnl_pct for e in exps]) / 100, -1, 1),
        )


def run(rounds: int = 15) -> list[Comparison]:
    data = records(N)
    batched, single = Policy(ACTIONS, seed=1), Policy(ACTIONS, seed=1)
    cand, base = interleave(
        lambda: ingest(data, batched, 256), lambda: ingest(data, single, 1), max(3, rounds // 5), 1
    )
    return [
        Comparison(
            name=f"RL agent ingest + learn, {N} experiences",
            candidate="validate + learn in batches of 256",
            baseline="validate + learn one experience at a time",
            target=">= 5,000 experiences/s",
            candidate_times=cand,
            baseline_times=base,
        )
    ]
