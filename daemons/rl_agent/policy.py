"""The sizing model: per-context running moments of the trade's return, shrunk by evidence.

The price return `ret` of a trade does not depend on the size it was given, so every closed
trade tells the utility of every multiplier (full information):

    u(m) = m * ret - cost * m - (gamma / 2) * m**2 * ret**2

The best multiplier of a context x is then (E[ret|x] - cost) / (gamma * E[ret**2|x]), clipped to
the range; the served one is the grid action with the highest estimated utility.

E[ret|x] and E[ret**2|x] come from a table: the context's cell in the bins of `rl.bins`
(confidence x volatility by default). Each cell keeps n, sum(ret), sum(ret**2), sum(ret**4), so
one trade at a time and a backlog learn exactly the same thing, in any order. A cell's estimate
is shrunk (empirical Bayes) toward its parent, the whole book plus each bin dimension's own
difference: a level differs from its parent only as far as a chi-square test of all its groups
(p < 0.001) shows a difference beyond noise, so a market where no feature predicts the return
serves one multiplier everywhere. Invariants: estimates are finite; a context with fewer than
`min_trades` of evidence is served 1.0 (`cold-start`); an action outside the grid is never served.

It is written in torch (buffers of one small nn.Module) so that its checkpoint is the same
weights-only torch file as before; nothing here needs a gradient.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

Z_TEST = 3.0902  # one-sided 99.9 % normal quantile: the heterogeneity test's level
VAR_PRIOR = 5.0  # pseudo-trades of the book's variance in a small group's variance


@dataclass(frozen=True)
class BinSpec:
    """One bin dimension: a numeric context field and its ascending edges."""

    field: str
    edges: tuple[float, ...]

    @property
    def size(self) -> int:
        return len(self.edges) + 1


def parse_bins(entries: tuple[str, ...]) -> tuple[BinSpec, ...]:
    """`field:e1,e2,...` entries; ValueError names a bad one."""
    specs = []
    for entry in entries:
        name, _, raw = entry.partition(":")
        try:
            edges = tuple(float(v) for v in raw.split(",") if v.strip())
        except ValueError:
            edges = ()
        if not name.strip() or not edges or list(edges) != sorted(set(edges)):
            raise ValueError(f"rl.bins: {entry!r} is not `field:ascending,edges`")
        specs.append(BinSpec(name.strip(), edges))
    return tuple(specs)


@dataclass(frozen=True)
class Choice:
    """What the policy serves for one cell (or for a context it cannot place)."""

    multiplier: float
    reason: str  # model | cold-start | no-context
    evidence: float
    mean: float
    second: float


def chi2_quantile(df: float) -> float:
    """The 99.9 % quantile of chi-square with df degrees of freedom (Wilson-Hilferty)."""
    a = 2 / (9 * df)
    return float(df * (1 - a + Z_TEST * math.sqrt(a)) ** 3)


def shrink(
    n: np.ndarray, sy: np.ndarray, syy: np.ndarray, parent: np.ndarray, df: int
) -> tuple[np.ndarray, np.ndarray]:
    """Group means of y shrunk toward `parent`, and each group's weight B in [0, 1]."""
    safe = np.maximum(n, 1)
    mean = np.where(n > 0, sy / safe, parent)
    count = max(float(n.sum()), 1.0)
    book_var = max(float(syy.sum()) / count - (float(sy.sum()) / count) ** 2, 1e-30)
    dof_each = np.maximum(n - 1, 0)
    raw_var = np.maximum((syy - sy * mean) / np.maximum(dof_each, 1), 0)
    se2 = (raw_var * dof_each + VAR_PRIOR * book_var) / (dof_each + VAR_PRIOR) / safe
    used = n >= 2
    # the test uses the pooled variance: per-group variances of a few dozen trades, as weights,
    # reject a true null far more often than the level says
    pooled = float((raw_var * dof_each * used).sum()) / max(float((dof_each * used).sum()), 1.0)
    q = float((used * n * (mean - parent) ** 2).sum()) / max(pooled, 1e-30)
    dof = max(int(used.sum()) - 1 - df, 1)
    tau2 = 0.0
    weight = np.where(used, 1 / se2, 0.0)
    if q > chi2_quantile(dof) and float(weight.sum()) > 0:
        sw, sw2 = float(weight.sum()), float((weight**2).sum())
        tau2 = max((q - dof) / max(sw - sw2 / sw, 1e-30), 0.0)
    b = np.where(used, tau2 / (tau2 + se2), 0.0)
    return parent + b * (mean - parent), b


class SizeModel(nn.Module):
    """The cell table (torch buffers), its estimates, and the choice per cell."""

    sums: torch.Tensor  # per cell: n, sum(ret), sum(ret**2), sum(ret**4)
    book: torch.Tensor  # the same over every trade, placed in a cell or not

    def __init__(
        self,
        bins: tuple[BinSpec, ...],
        actions: tuple[float, ...],
        risk_aversion: float,
        cost: float,
        min_trades: int,
    ) -> None:
        super().__init__()
        self.bins, self.actions = bins, actions
        self.risk_aversion, self.cost, self.min_trades = risk_aversion, cost, min_trades
        self.cells = int(np.prod([b.size for b in bins])) if bins else 1
        strides = [int(np.prod([b.size for b in bins[i + 1 :]])) for i in range(len(bins))]
        cells = np.arange(self.cells)
        self.groups = [(cells // st) % b.size for st, b in zip(strides, bins, strict=True)]
        self.register_buffer("sums", torch.zeros(self.cells, 4, dtype=torch.float64))
        self.register_buffer("book", torch.zeros(4, dtype=torch.float64))
        self.updates = 0
        self.choices: list[Choice] = []
        self.pooled = Choice(1.0, "cold-start", 0.0, 0.0, 0.0)
        self.refresh()

    # placing a context ---------------------------------------------------------------------
    def cell(self, context: dict[str, float]) -> int:
        """The context's cell, or -1 when a binned field is missing."""
        index = 0
        for spec in self.bins:
            value = context.get(spec.field)
            if value is None or not math.isfinite(value):
                return -1
            index = index * spec.size + bisect_right(spec.edges, value)
        return index

    def choose(self, context: dict[str, float]) -> Choice:
        """The served choice for a context (cold-start 1.0 until there is evidence)."""
        index = self.cell(context)
        return self.choices[index] if index >= 0 else self.pooled

    # learning ------------------------------------------------------------------------------
    def learn(self, cells: list[int], rets: list[float]) -> None:
        """Add trades (cell -1: the book only) and refresh the table."""
        if not rets:
            return
        ret = torch.as_tensor(rets, dtype=torch.float64)
        moments = torch.stack([torch.ones_like(ret), ret, ret**2, ret**4], dim=1)
        self.book += moments.sum(dim=0)
        index = torch.as_tensor(cells, dtype=torch.int64)
        placed = index >= 0
        self.sums.index_add_(0, index[placed], moments[placed])
        self.updates += 1
        self.refresh()

    def estimates(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per cell: E[ret], E[ret**2] and the evidence (trades) behind them.

        E[ret**2] first; the mean is then learned on returns standardised by each cell's
        root-mean-square, so a confidence effect is judged in units of risk across all
        volatility bins (weighted least squares), and mapped back."""
        n, s1, s2, s4 = self.sums.numpy().T
        second, _ = self._levels(n, s2, s4, ratio=True)
        rms = np.sqrt(np.maximum(second, 1e-18))
        z, weight = self._levels(n, s1 / rms, s2 / rms**2)
        mean = z * rms
        evidence = weight * n + (1 - weight) * float(self.book[0])
        return mean, np.maximum(second, mean**2), evidence

    def _levels(
        self, n: np.ndarray, sy: np.ndarray, syy: np.ndarray, ratio: bool = False
    ) -> tuple[np.ndarray, np.ndarray]:
        """y per cell: the book's mean, with each bin dimension's shrunk difference (added, or
        as a ratio for a second moment, which scales with volatility squared), plus the cell's
        own shrunk difference from that parent."""
        grand = np.full(self.cells, float(sy.sum()) / max(float(n.sum()), 1.0))
        parent, fitted = grand.copy(), 0
        for axis, spec in enumerate(self.bins if len(self.bins) > 1 else ()):
            group = self.groups[axis]
            agg = [np.bincount(group, weights=v, minlength=spec.size) for v in (n, sy, syy)]
            means, b = shrink(agg[0], agg[1], agg[2], grand[: spec.size], 0)
            if ratio:
                parent = parent * (means[group] / np.maximum(grand, 1e-30))
            else:
                parent = parent + (means[group] - grand)
            fitted += (spec.size - 1) * bool(b.max() > 0)
        return shrink(n, sy, syy, parent, fitted)

    def refresh(self) -> None:
        """Recompute the choice of every cell (a few hundred at most: microseconds)."""
        mean, second, evidence = self.estimates()
        self.choices = [
            self._choice(float(m), float(s), float(e))
            for m, s, e in zip(mean.tolist(), second.tolist(), evidence.tolist(), strict=True)
        ]
        count = float(self.book[0])
        book1 = float(self.book[1]) / max(count, 1)
        book2 = max(float(self.book[2]) / max(count, 1), book1**2)
        pooled = self._choice(book1, book2, count)
        self.pooled = Choice(pooled.multiplier, pooled.reason, count, book1, book2)
        if pooled.reason == "model":
            self.pooled = Choice(pooled.multiplier, "no-context", count, book1, book2)

    def _choice(self, mean: float, second: float, evidence: float) -> Choice:
        if evidence < self.min_trades or second <= 0:
            return Choice(1.0, "cold-start", evidence, mean, second)
        best = max(self.actions, key=lambda m: self.utility(m, mean, second))
        return Choice(best, "model", evidence, mean, second)

    def utility(self, m: float, mean: float, second: float) -> float:
        """Expected utility of size m given E[ret] and E[ret**2]."""
        return m * (mean - self.cost) - self.risk_aversion / 2 * m * m * second

    def utility_of(self, m: float, ret: float) -> float:
        """The realised utility of size m on a trade that returned `ret`."""
        return m * (ret - self.cost) - self.risk_aversion / 2 * m * m * ret * ret

    # persistence ---------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        return {
            "sums": self.sums.clone(),
            "book": self.book.clone(),
            "updates": self.updates,
            "actions": list(self.actions),
            "bins": [[b.field, list(b.edges)] for b in self.bins],
        }

    def load(self, state: dict[str, Any]) -> None:
        if tuple(state["actions"]) != self.actions:
            raise ValueError("checkpoint was trained for other multipliers")
        if [[f, list(e)] for f, e in state["bins"]] != [
            [b.field, list(b.edges)] for b in self.bins
        ]:
            raise ValueError("checkpoint was trained on other bins")
        self.sums.copy_(state["sums"])
        self.book.copy_(state["book"])
        self.updates = int(state["updates"])
        self.refresh()
