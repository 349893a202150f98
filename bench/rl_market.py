"""Synthetic markets for the RL sizing agent: contexts, closed trades, and the true optimum.

A context is (confidence, volatility); the trade's side-aware price return is
ret = mu(x) + sigma(x) * noise with unit-variance noise, so the expected utility of size m is
m * (mu - cost) - gamma / 2 * m**2 * (mu**2 + sigma**2), known exactly for every context.
Shapes: `step` (high confidence wins, low loses), `linear` (the edge grows with confidence),
`noisy` (linear, weaker, fat-tailed noise) and `null` (no feature predicts the return).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SHAPES = ("step", "linear", "noisy", "null")
ACTIONS = (0.25, 0.5, 0.75, 1.0, 1.25, 1.5)
GAMMA, COST = 10.0, 0.001  # rl.risk_aversion and rl.cost_bps = 10 (the defaults)


@dataclass(frozen=True)
class Market:
    """One market shape with a fixed seed."""

    shape: str
    seed: int = 0

    def contexts(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Confidence in [0, 1] and volatility (fraction of price) in [0.004, 0.04]."""
        return rng.uniform(0, 1, n), rng.uniform(0.004, 0.04, n)

    def moments(self, conf: np.ndarray, vol: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """mu and sigma of the return for each context."""
        if self.shape == "step":
            return np.where(conf > 0.6, 0.35, -0.05) * vol, vol
        if self.shape == "linear":
            return (conf - 0.3) * 1.0 * vol, vol
        if self.shape == "noisy":
            return (conf - 0.3) * 0.8 * vol, vol
        return np.full_like(conf, 0.003), np.full_like(vol, 0.015)

    def returns(self, conf: np.ndarray, vol: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """One realised return per context."""
        mu, sigma = self.moments(conf, vol)
        if self.shape == "noisy":
            noise = rng.standard_t(4, len(conf)) / np.sqrt(2.0)  # t(4) has variance 2
        else:
            noise = rng.standard_normal(len(conf))
        return np.asarray(mu + sigma * noise)

    def utility(self, m: np.ndarray, conf: np.ndarray, vol: np.ndarray) -> np.ndarray:
        """The exact expected utility of size m in each context."""
        mu, sigma = self.moments(conf, vol)
        return np.asarray(m * (mu - COST) - GAMMA / 2 * m**2 * (mu**2 + sigma**2))

    def optimum(self, conf: np.ndarray, vol: np.ndarray) -> np.ndarray:
        """The best grid multiplier in each context."""
        grid = np.asarray(ACTIONS)
        table = np.stack([self.utility(np.full_like(conf, m), conf, vol) for m in grid], axis=1)
        return np.asarray(grid[table.argmax(axis=1)])

    def trades(self, n: int) -> list[dict[str, str]]:
        """`n` closed trades as the fleet writes them, with their entry context."""
        rng = np.random.default_rng(self.seed)
        conf, vol = self.contexts(n, rng)
        ret = self.returns(conf, vol, rng)
        side = rng.choice(["LONG", "SHORT"], n)
        out = []
        for i in range(n):
            sign = 1 if side[i] == "LONG" else -1
            entry = 100.0
            exit_ = entry * (1 + sign * ret[i])
            out.append(
                {
                    "event_type": "trade.closed",
                    "timestamp": str(1_790_000_000 + i),
                    "symbol": ("BTCUSDT", "ETHUSDT", "SOLUSDT")[i % 3],
                    "side": str(side[i]),
                    "entry_price": f"{entry:.8f}",
                    "exit_price": f"{exit_:.8f}",
                    "pnl_percent": f"{sign * (exit_ - entry) / entry * 100:.8f}",
                    "source": "executor",
                    "order_id": f"{self.shape}-{self.seed}-{i}",
                    "confidence": f"{conf[i]:.6f}",
                    "volatility": f"{vol[i]:.6f}",
                }
            )
        return out


def score(
    market: Market, served: np.ndarray, conf: np.ndarray, vol: np.ndarray
) -> dict[str, float]:
    """Expected utility of the served sizes against always-1.0 and the optimum."""
    policy = float(market.utility(served, conf, vol).mean())
    one = float(market.utility(np.ones_like(conf), conf, vol).mean())
    best = float(market.utility(market.optimum(conf, vol), conf, vol).mean())
    return {
        "policy": policy,
        "always_one": one,
        "optimum": best,
        "fraction": policy / best if best > 0 else float("nan"),
        "gain": (policy - one) / (best - one) if best > one else float("nan"),
    }
