"""Which model learns sizing fastest: the agent's table model against a small torch network.

Both see the same closed trades one at a time (a trickle, as the fleet produces them) on each
synthetic market of bench/rl_market.py, with the same full-information reward (every trade tells
the utility of every multiplier). Scored as in bench/rl_agent.py: the exact expected utility of
the sizes each would serve on 300 fixed probe contexts, as a fraction of the optimum's, after 100,
250, 500 and 1,000 trades. Model-only (no Redis): the daemon's own curve is bench/rl_agent.py.

The network: (confidence, volatility) -> one utility per multiplier, 2x32 tanh, Adam 1e-3, one
step per trade on a minibatch of 64 drawn from every trade so far, targets the realised utility
of each multiplier divided by the trade's volatility squared (so they are O(1)).
"""

from __future__ import annotations

import statistics

import numpy as np
import torch
from torch import nn

from bench.harness import Comparison
from bench.rl_market import ACTIONS, COST, GAMMA, Market, score
from qtctl.daemons.rl_agent.policy import SizeModel, parse_bins

BINS = ("confidence:0.2,0.4,0.6,0.8", "volatility:0.005,0.01,0.015,0.02,0.03")
CHECKPOINTS = (100, 250, 500, 1000)


class TorchSizer:
    """The network candidate, trained online."""

    def __init__(self, seed: int) -> None:
        torch.manual_seed(seed)
        self.net = nn.Sequential(nn.Linear(2, 32), nn.Tanh(), nn.Linear(32, 32), nn.Tanh())
        self.head = nn.Linear(32, len(ACTIONS))
        params = [*self.net.parameters(), *self.head.parameters()]
        self.opt = torch.optim.Adam(params, lr=1e-3)
        self.rng = np.random.default_rng(seed)
        self.x: list[list[float]] = []
        self.y: list[list[float]] = []

    def _inputs(self, conf: float, vol: float) -> list[float]:
        return [conf * 2 - 1, vol * 50 - 1]

    def learn(self, conf: float, vol: float, ret: float) -> None:
        m = np.asarray(ACTIONS)
        utility = m * (ret - COST) - GAMMA / 2 * m * m * ret * ret
        self.x.append(self._inputs(conf, vol))
        self.y.append(list(utility / vol**2))
        pick = self.rng.integers(0, len(self.x), min(64, len(self.x)))
        x = torch.as_tensor([self.x[i] for i in pick], dtype=torch.float32)
        y = torch.as_tensor([self.y[i] for i in pick], dtype=torch.float32)
        loss = ((self.head(self.net(x)) - y) ** 2).mean()
        self.opt.zero_grad()
        loss.backward()
        self.opt.step()

    def serve(self, conf: np.ndarray, vol: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            rows = [self._inputs(float(c), float(v)) for c, v in zip(conf, vol, strict=True)]
            x = torch.as_tensor(rows, dtype=torch.float32)
            best = self.head(self.net(x)).argmax(dim=1).numpy()
        return np.asarray(ACTIONS)[best]


def curves(market: Market) -> dict[str, list[float]]:
    """Fraction of the optimum after each checkpoint, per model."""
    rng = np.random.default_rng(market.seed)
    conf, vol = market.contexts(max(CHECKPOINTS), rng)
    ret = market.returns(conf, vol, rng)
    probe_c, probe_v = market.contexts(300, np.random.default_rng(999))
    table = SizeModel(parse_bins(BINS), ACTIONS, GAMMA, COST, 20)
    network = TorchSizer(market.seed)
    out: dict[str, list[float]] = {"table": [], "torch": []}
    for i in range(max(CHECKPOINTS)):
        c, v, r = float(conf[i]), float(vol[i]), float(ret[i])
        table.learn([{"confidence": c, "volatility": v}], [r])
        network.learn(c, v, r)
        if i + 1 in CHECKPOINTS:
            contexts = zip(probe_c, probe_v, strict=True)
            served = [
                table.choose({"confidence": a, "volatility": b}).multiplier for a, b in contexts
            ]
            out["table"].append(score(market, np.asarray(served), probe_c, probe_v)["fraction"])
            served_net = network.serve(probe_c, probe_v)
            out["torch"].append(score(market, served_net, probe_c, probe_v)["fraction"])
    return out


def run(rounds: int = 3) -> list[Comparison]:
    """Print each model's curve per market and seed, and the median at 1,000 trades. The
    result is a fraction of the optimum, not a time, so it adds no row to the timing table."""
    for shape in ("step", "linear", "noisy", "null"):
        finals: dict[str, list[float]] = {"table": [], "torch": []}
        for seed in range(max(rounds, 1)):
            for name, curve in curves(Market(shape, seed)).items():
                finals[name].append(curve[-1])
                shown = " / ".join(f"{v:.2f}" for v in curve)
                print(f"{shape} seed {seed} {name}: {shown} after {CHECKPOINTS}", flush=True)
        medians = {k: f"{statistics.median(v):.2f}" for k, v in finals.items()}
        print(f"{shape}: median at 1,000 trades {medians}", flush=True)
    return []
