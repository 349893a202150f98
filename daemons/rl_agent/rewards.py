"""Rewards from experiences: plain clipped PnL by default, or a risk-adjusted shaping.

- `pnl`: pnl_pct / 100, clipped to [-1, 1].
- `r_multiple`: the trade's R multiple (`R_net` from the producer) / `rl.r_scale`, clipped.
- `sharpe`: the PnL standardised by the running mean and deviation of PnL (Welford), clipped.
- `drawdown`: the PnL reward minus `rl.drawdown_penalty` times the growth in drawdown of the
  cumulative PnL curve.
The running state is saved in every checkpoint, so a restart shapes the same way.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

KINDS = ("pnl", "r_multiple", "sharpe", "drawdown")


class Shaper:
    """Turns PnL (and R) into rewards in [-1, 1]; its state survives restarts."""

    def __init__(self, kind: str = "pnl", r_scale: float = 3.0, penalty: float = 0.5) -> None:
        if kind not in KINDS:
            raise ValueError(f"rl.reward must be one of {', '.join(KINDS)}, got {kind!r}")
        self.kind, self.r_scale, self.penalty = kind, r_scale, penalty
        self.count, self.mean, self.m2 = 0, 0.0, 0.0
        self.equity, self.peak = 0.0, 0.0

    def rewards(self, pnl_pct: np.ndarray, r_multiple: np.ndarray) -> np.ndarray:
        """One reward per experience, in order."""
        base = np.clip(pnl_pct / 100, -1, 1)
        if self.kind == "pnl":
            return base
        if self.kind == "r_multiple":
            r = np.where(np.isfinite(r_multiple), r_multiple / self.r_scale, base)
            return np.clip(r, -1, 1)
        out = np.empty(len(pnl_pct))
        for i, pnl in enumerate(pnl_pct.tolist()):
            if self.kind == "sharpe":
                std = math.sqrt(self.m2 / (self.count - 1)) if self.count > 1 else 1.0
                out[i] = max(-1.0, min(1.0, (pnl - self.mean) / (std or 1.0) / 3))
                self.count += 1
                delta = pnl - self.mean
                self.mean += delta / self.count
                self.m2 += delta * (pnl - self.mean)
            else:
                before = self.peak - self.equity
                self.equity += pnl
                self.peak = max(self.peak, self.equity)
                growth = max(0.0, (self.peak - self.equity) - before)
                out[i] = max(-1.0, min(1.0, base[i] - self.penalty * growth / 100))
        return out

    def state(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "count": self.count,
            "mean": self.mean,
            "m2": self.m2,
            "equity": self.equity,
            "peak": self.peak,
        }

    def load(self, state: dict[str, Any]) -> None:
        if state.get("kind") != self.kind:
            return  # the shaping changed: start its statistics afresh
        self.count, self.mean, self.m2 = int(state["count"]), state["mean"], state["m2"]
        self.equity, self.peak = state["equity"], state["peak"]
