"""The sizing policy: a small torch network scoring each size multiplier for an entry context.

Trained online as a contextual bandit from (context, multiplier used, reward): the network
predicts the reward of every multiplier and is regressed on the one that was taken. It
recommends the best-scoring multiplier, or 1.0 while untrained or when no multiplier stands out.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import nn

N_FEATURES = 8


class RunningStats:
    """Welford mean/variance of rewards (persisted with the model)."""

    def __init__(self) -> None:
        self.count, self.mean, self.m2 = 0, 0.0, 0.0
        self.low, self.high = math.inf, -math.inf

    def add(self, values: np.ndarray) -> None:
        for v in values.tolist():
            self.count += 1
            delta = v - self.mean
            self.mean += delta / self.count
            self.m2 += delta * (v - self.mean)
            self.low, self.high = min(self.low, v), max(self.high, v)

    @property
    def std(self) -> float:
        return math.sqrt(self.m2 / (self.count - 1)) if self.count > 1 else 0.0

    def state(self) -> dict[str, float]:
        return {
            "count": self.count,
            "mean": self.mean,
            "m2": self.m2,
            "low": self.low,
            "high": self.high,
        }

    def load(self, state: dict[str, float]) -> None:
        self.count, self.mean, self.m2 = int(state["count"]), state["mean"], state["m2"]
        self.low, self.high = state["low"], state["high"]


class Policy:
    """Multipliers, the network, its optimiser and the reward statistics."""

    def __init__(
        self,
        actions: tuple[float, ...],
        seed: int = 0,
        lr: float = 0.01,
        min_updates: int = 50,
        margin: float = 0.002,
        temperature: float = 0.02,
    ) -> None:
        torch.manual_seed(seed)
        self.actions = actions
        self.net = nn.Sequential(nn.Linear(N_FEATURES, 32), nn.ReLU(), nn.Linear(32, len(actions)))
        self.opt = torch.optim.Adam(self.net.parameters(), lr=lr)
        self.updates = 0
        self.min_updates, self.margin, self.temperature = min_updates, margin, temperature
        self.rewards = RunningStats()

    def action_index(self, multipliers: np.ndarray) -> np.ndarray:
        """The nearest action for each multiplier actually used."""
        grid = np.asarray(self.actions)
        index: np.ndarray = np.abs(multipliers[:, None] - grid[None, :]).argmin(axis=1)
        return index

    def learn(self, features: np.ndarray, multipliers: np.ndarray, rewards: np.ndarray) -> float:
        """One gradient step on a batch; returns the loss."""
        x = torch.as_tensor(features, dtype=torch.float32)
        a = torch.as_tensor(self.action_index(multipliers), dtype=torch.int64)
        r = torch.as_tensor(rewards, dtype=torch.float32)
        predicted = self.net(x).gather(1, a[:, None]).squeeze(1)
        loss = nn.functional.mse_loss(predicted, r)
        self.opt.zero_grad()
        loss.backward()  # type: ignore[no-untyped-call]
        self.opt.step()
        self.updates += 1
        self.rewards.add(rewards)
        return float(loss.item())

    def scores(self, features: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            out: np.ndarray = self.net(torch.as_tensor(features, dtype=torch.float32)).numpy()
            return out

    def recommend(self, features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(multiplier, action probabilities) per row; 1.0 while unsure."""
        q = self.scores(features)
        z = (q - q.max(axis=1, keepdims=True)) / self.temperature
        probs = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
        best = np.asarray(self.actions)[q.argmax(axis=1)]
        spread = q.max(axis=1) - np.median(q, axis=1)
        unsure = (self.updates < self.min_updates) | (spread < self.margin)
        return np.where(unsure, 1.0, best), probs

    def entropy(self, features: np.ndarray) -> float:
        _, probs = self.recommend(features)
        return float(-(probs * np.log(probs + 1e-12)).sum(axis=1).mean())

    def state(self) -> dict[str, Any]:
        return {
            "net": self.net.state_dict(),
            "opt": self.opt.state_dict(),
            "updates": self.updates,
            "rewards": self.rewards.state(),
            "actions": list(self.actions),
        }

    def load(self, state: dict[str, Any]) -> None:
        if tuple(state["actions"]) != self.actions:
            raise ValueError("checkpoint was trained for other multipliers")
        self.net.load_state_dict(state["net"])
        self.opt.load_state_dict(state["opt"])
        self.updates = int(state["updates"])
        self.rewards.load(state["rewards"])
