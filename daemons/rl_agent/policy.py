"""The sizing model: per-context moments of the trade's return, in units of the trade's own risk,
shrunk by evidence.

The price return `ret` of a trade does not depend on the size it was given, so every closed
trade tells the utility of every multiplier (full information):

    u(m) = m * ret - cost * m - (gamma / 2) * m**2 * ret**2

The best multiplier of a context x is (E[ret|x] - cost) / (gamma * E[ret**2|x]), clipped to the
range; the served one is the grid action with the highest estimated utility.

How E[ret|x] and E[ret**2|x] are estimated (everything from running sums, so one trade at a
time and a backlog learn exactly the same thing, in any order):
1. **Scale.** Returns are modelled as ret = s(x) * z. s is the context's `scale_field`
   (volatility, a fraction of the price) when the data say returns scale with it (the slope of
   log|ret| on log(volatility) is nearer 1 than 0), else 1. Both candidates' sums are kept.
2. **E[z**2|x]** per cell of `bins`, shrunk toward the book times each bin dimension's ratio.
3. **E[z|x]**, two candidates: `table` (the cell's shrunk mean, as E[z**2]) and `linear` (least
   squares on the `linear` fields, a slope kept only when its t-statistic passes the test, plus
   the cell's shrunk residual). Each is scored prequentially: before a trade is learned, the
   realised utility of what each candidate would have served for it is added to its score. The
   better-scoring candidate serves.
Invariants: estimates are finite; a context with fewer than `min_trades` of evidence is served
1.0 (`cold-start`); an action outside the grid is never served; a market where no feature
predicts the return gets one multiplier everywhere (every difference must pass p < 0.001).

It is written in torch (buffers of one small nn.Module) so that its checkpoint is the same
weights-only torch file as before; nothing here needs a gradient.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from qtctl.daemons.rl_agent.shrinkage import Z_TEST, levels

FLOOR_Z = 0.01  # |ret| below 1 % of the scale counts as that in the log regression (a 0 PnL)
MODES = ("table", "linear")


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
    """What the policy serves for one context."""

    multiplier: float
    reason: str  # model | cold-start | no-context
    evidence: float
    mean: float  # E[ret|x]
    second: float  # E[ret**2|x]


@dataclass(frozen=True)
class Fit:
    """The estimates of one refresh, per cell (scale 1: returns scale with `scale_field`)."""

    scale: int
    second: np.ndarray
    table: np.ndarray
    coef: np.ndarray  # intercept, then one slope per linear field (0: not significant)
    resid: np.ndarray
    evidence: np.ndarray
    mode: str


class SizeModel(nn.Module):
    """Running sums (torch buffers), the fit they give, and the choice per context."""

    sums: torch.Tensor  # (scale candidate, cell, column): see _row
    book: torch.Tensor  # over every trade: n, sum(ret), sum(ret**2), sum(ret**4)
    logs: torch.Tensor  # n, sum(lv), sum(lv**2), sum(lr), sum(lv*lr): log|ret| on log scale
    score: torch.Tensor  # prequential realised utility of the table and the linear candidate

    def __init__(
        self,
        bins: tuple[BinSpec, ...],
        actions: tuple[float, ...],
        risk_aversion: float,
        cost: float,
        min_trades: int,
        scale_field: str = "volatility",
        linear: Sequence[str] = ("confidence",),
        caution: float = 0.25,
    ) -> None:
        super().__init__()
        fields = [b.field for b in bins]
        self.scale_field = scale_field if scale_field in fields else ""
        self.linear = tuple(f for f in linear if f in fields)
        self.bins, self.actions = bins, actions
        self.risk_aversion, self.cost, self.min_trades = risk_aversion, cost, min_trades
        self.caution = caution
        self.cells = int(np.prod([b.size for b in bins])) if bins else 1
        strides = [int(np.prod([b.size for b in bins[i + 1 :]])) for i in range(len(bins))]
        cells = np.arange(self.cells)
        self.groups = [(cells // st) % b.size for st, b in zip(strides, bins, strict=True)]
        d = len(self.linear)
        self.width = 5 + 2 * d + d * d
        self.register_buffer("sums", torch.zeros(2, self.cells, self.width, dtype=torch.float64))
        self.register_buffer("book", torch.zeros(4, dtype=torch.float64))
        self.register_buffer("logs", torch.zeros(5, dtype=torch.float64))
        self.register_buffer("score", torch.zeros(2, dtype=torch.float64))
        self.updates = 0
        self.refresh()

    # placing a context ---------------------------------------------------------------------
    def cell(self, context: dict[str, float]) -> int:
        """The context's cell, or -1 when a binned field is missing (or its scale is not > 0)."""
        index = 0
        for spec in self.bins:
            value = context.get(spec.field)
            if value is None or not math.isfinite(value):
                return -1
            index = index * spec.size + bisect_right(spec.edges, value)
        if self.scale_field and not context[self.scale_field] > 0:
            return -1
        return index

    def choose(self, context: dict[str, float]) -> Choice:
        """The served choice for a context (cold-start 1.0 until there is evidence)."""
        return self._choose(context, self.fit.mode)

    def _choose(self, context: dict[str, float], mode: str) -> Choice:
        index = self.cell(context)
        if index < 0:
            return self.pooled
        fit = self.fit
        s = context[self.scale_field] if fit.scale else 1.0
        second, table = float(fit.second[index]), float(fit.table[index])
        if mode == "linear":  # the cell's variance about its own mean, plus this mean squared
            x = np.asarray([1.0, *(context[f] for f in self.linear)])
            z = float(fit.coef @ x + fit.resid[index])
            second = max(second - table * table, 0.0) + z * z
        else:
            z = table
        mean, second = s * z, s * s * max(second, z * z)
        return self._choice(mean, second, float(fit.evidence[index]))

    # learning ------------------------------------------------------------------------------
    def learn(self, contexts: Sequence[dict[str, float]], rets: Sequence[float]) -> None:
        """Add trades (a context that cannot be placed: the book only) and refresh. Each is
        first scored against both candidates as the model stood before this batch."""
        if not rets:
            return
        placed = [(self.cell(c), c, r) for c, r in zip(contexts, rets, strict=True)]
        placed = [p for p in placed if p[0] >= 0]
        if placed:
            index = np.asarray([p[0] for p in placed])
            ret = np.asarray([p[2] for p in placed], dtype=np.float64)
            field = self.scale_field
            scale = np.asarray([p[1][field] if field else 1.0 for p in placed], dtype=np.float64)
            x = np.asarray([[p[1][f] for f in self.linear] for p in placed], dtype=np.float64)
            x = x.reshape(len(placed), len(self.linear))
            score = [float(self._realised(self._serve(index, scale, x, m), ret)) for m in MODES]
            rows = np.zeros((2, self.cells, self.width))
            for k, s in enumerate((np.ones_like(scale), scale)):
                np.add.at(rows[k], index, _rows(ret / s, scale, x))
            lv = np.log(scale)
            lr = np.log(np.maximum(np.abs(ret), FLOOR_Z * scale))
            logs = [len(ret), lv.sum(), (lv * lv).sum(), lr.sum(), (lv * lr).sum()]
            self.sums += torch.as_tensor(rows)
            self.logs += torch.as_tensor(logs, dtype=torch.float64)
            self.score += torch.as_tensor(score, dtype=torch.float64)
        r = np.asarray(rets, dtype=np.float64)
        self.book += torch.as_tensor([len(r), r.sum(), (r**2).sum(), (r**4).sum()])
        self.updates += 1
        self.refresh()

    def multipliers(self, contexts: Sequence[dict[str, float]]) -> np.ndarray:
        """What `choose` serves for each context, computed for all of them at once."""
        out = np.full(len(contexts), self.pooled.multiplier)
        cells = [self.cell(c) for c in contexts]
        placed = [i for i, cell in enumerate(cells) if cell >= 0]
        if placed:
            field = self.scale_field
            scale = np.asarray([contexts[i][field] if field else 1.0 for i in placed], dtype=float)
            x = np.asarray([[contexts[i][f] for f in self.linear] for i in placed], dtype=float)
            x = x.reshape(len(placed), len(self.linear))
            index = np.asarray([cells[i] for i in placed])
            out[placed] = self._serve(index, scale, x, self.fit.mode)
        return out

    def _serve(self, index: np.ndarray, scale: np.ndarray, x: np.ndarray, mode: str) -> np.ndarray:
        """What `_choose` serves, for many placed contexts at once (the same formulas)."""
        fit = self.fit
        s = scale if fit.scale else np.ones_like(scale)
        second, table = fit.second[index], fit.table[index]
        if mode == "linear":
            z = fit.coef[0] + x @ fit.coef[1:] + fit.resid[index]
            second = np.maximum(second - table * table, 0.0) + z * z
        else:
            z = table
        mean, second = s * z, s * s * np.maximum(second, z * z)
        evidence = fit.evidence[index]
        acts = np.asarray(self.actions)
        se = np.sqrt(second / np.maximum(evidence, 1.0))
        value = (
            acts * (mean[:, None] - self.cost) - self.risk_aversion / 2 * acts**2 * second[:, None]
        )
        value = value - np.abs(acts - 1.0) * self.caution * se[:, None]
        best = acts[np.argmax(value, axis=1)]
        cold = (evidence < self.min_trades) | (second <= 0)
        return np.where(cold, 1.0, best)

    def _realised(self, m: np.ndarray, ret: np.ndarray) -> float:
        return float((m * (ret - self.cost) - self.risk_aversion / 2 * m * m * ret * ret).sum())

    def refresh(self) -> None:
        """Recompute the fit (a few hundred cells at most: well under a millisecond)."""
        scale = self._scale_mode()
        sums = self.sums[scale].numpy()
        d = len(self.linear)
        n, sz, szz, sz4 = sums[:, 0], sums[:, 1], sums[:, 2], sums[:, 3]
        sx, sxz = sums[:, 5 : 5 + d], sums[:, 5 + d : 5 + 2 * d]
        sxx = sums[:, 5 + 2 * d :].reshape(self.cells, d, d)
        second, _ = levels(self.groups, self._sizes, n, szz, sz4, ratio=True)
        table, weight = levels(self.groups, self._sizes, n, sz, szz)
        coef = _slopes(n, sx, sxx, sz, sxz, szz)
        a, b = coef[0], coef[1:]
        rs = sz - a * n - sx @ b
        rss = szz - 2 * a * sz - 2 * sxz @ b + a * a * n + 2 * a * (sx @ b)
        rss = rss + np.einsum("i,cij,j->c", b, sxx, b)
        resid, _ = levels(self.groups, self._sizes, n, rs, np.maximum(rss, 0.0))
        evidence = weight * n + (1 - weight) * float(n.sum())
        better = "linear" if float(self.score[1]) > float(self.score[0]) else "table"
        self.fit = Fit(scale, second, table, coef, resid, evidence, better if d else "table")
        count = float(self.book[0])
        book1 = float(self.book[1]) / max(count, 1)
        book2 = max(float(self.book[2]) / max(count, 1), book1**2)
        pooled = self._choice(book1, book2, count)
        reason = "no-context" if pooled.reason == "model" else pooled.reason
        self.pooled = Choice(pooled.multiplier, reason, count, book1, book2)

    @property
    def _sizes(self) -> list[int]:
        return [b.size for b in self.bins]

    def _scale_mode(self) -> int:
        """1 when log|ret| rises with log(scale) at a slope nearer 1 than 0 (returns are in
        units of the scale field), else 0."""
        n, sv, svv, sr, svr = (float(v) for v in self.logs)
        if not self.scale_field or n < 10:
            return 0
        var = svv / n - (sv / n) ** 2
        return int(var > 1e-12 and (svr / n - sv * sr / n**2) / var > 0.5)

    @property
    def choices(self) -> list[Choice]:
        """Each cell's choice at the cell's average context (the stats' table)."""
        out = []
        for k, row in enumerate(self.sums[self.fit.scale].numpy()):
            count = max(float(row[0]), 1.0)
            context = {b.field: _middle(b, int(self.groups[i][k])) for i, b in enumerate(self.bins)}
            context.update({f: float(row[5 + j]) / count for j, f in enumerate(self.linear)})
            if self.scale_field and row[0] > 0:
                context[self.scale_field] = float(row[4]) / count
            out.append(self.choose(context) if self.cell(context) >= 0 else self.pooled)
        return out

    def _choice(self, mean: float, second: float, evidence: float) -> Choice:
        """The grid action with the best utility, each move away from 1.0 charged its
        uncertainty: |m - 1| * caution * se(E[ret]) (1.0 is what the fleet does without us, so
        leaving it needs evidence; the charge fades as the evidence grows)."""
        if evidence < self.min_trades or second <= 0:
            return Choice(1.0, "cold-start", evidence, mean, second)
        se = math.sqrt(second / max(evidence, 1.0))
        best = max(
            self.actions,
            key=lambda m: self.utility(m, mean, second) - abs(m - 1.0) * self.caution * se,
        )
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
            **{k: v.clone() for k, v in self.state_dict().items()},
            "updates": self.updates,
            "actions": list(self.actions),
            "bins": [[b.field, list(b.edges)] for b in self.bins],
            "scale_field": self.scale_field,
            "linear": list(self.linear),
        }

    def load(self, state: dict[str, Any]) -> None:
        """A checkpoint of this very model shape; ValueError otherwise (start afresh)."""
        if tuple(state["actions"]) != self.actions:
            raise ValueError("checkpoint was trained for other multipliers")
        if [[f, list(e)] for f, e in state["bins"]] != [
            [b.field, list(b.edges)] for b in self.bins
        ]:
            raise ValueError("checkpoint was trained on other bins")
        if state.get("scale_field") != self.scale_field or state.get("linear") != list(self.linear):
            raise ValueError("checkpoint was trained with another scale field or linear fields")
        for name in ("sums", "book", "logs", "score"):
            if name not in state or tuple(state[name].shape) != tuple(getattr(self, name).shape):
                raise ValueError(f"checkpoint has no {name} of this model's shape")
            getattr(self, name).copy_(state[name])
        self.updates = int(state["updates"])
        self.refresh()


def _rows(z: np.ndarray, scale: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Each trade's columns: n, z, z**2, z**4, scale, x, x*z, outer(x, x)."""
    head = np.column_stack([np.ones_like(z), z, z * z, z**4, scale])
    outer = (x[:, :, None] * x[:, None, :]).reshape(len(z), -1)
    return np.concatenate([head, x, x * z[:, None], outer], axis=1)


def _slopes(
    n: np.ndarray,
    sx: np.ndarray,
    sxx: np.ndarray,
    sz: np.ndarray,
    sxz: np.ndarray,
    szz: np.ndarray,
) -> np.ndarray:
    """Least squares of z on the linear fields over every placed trade; a slope whose
    t-statistic does not pass the test is dropped (and the rest refitted)."""
    total = float(n.sum())
    d = sx.shape[1]
    coef = np.zeros(d + 1)
    if total < d + 3:
        return coef
    keep = list(range(d))
    while True:
        idx = [0, *(j + 1 for j in keep)]
        xtx = np.zeros((d + 1, d + 1))
        xtx[0, 0], xtx[0, 1:], xtx[1:, 0] = total, sx.sum(0), sx.sum(0)
        xtx[1:, 1:] = sxx.sum(0)
        xtz = np.concatenate([[sz.sum()], sxz.sum(0)])
        sub = xtx[np.ix_(idx, idx)]
        try:
            beta = np.linalg.solve(sub, xtz[idx])
            inverse = np.linalg.inv(sub)
        except np.linalg.LinAlgError:
            return np.asarray([float(sz.sum()) / total, *([0.0] * d)])
        rss = max(float(szz.sum()) - float(beta @ xtz[idx]), 0.0)
        sigma2 = rss / max(total - len(idx), 1.0)
        t = np.abs(beta[1:]) / np.sqrt(np.maximum(np.diag(inverse)[1:] * sigma2, 1e-300))
        weak = [j for j, tj in zip(keep, t, strict=True) if tj <= Z_TEST]
        if not weak:
            coef[idx] = beta
            return coef
        keep = [j for j in keep if j not in weak]


def _middle(spec: BinSpec, index: int) -> float:
    """A representative value of bin `index` (its middle; an outer bin: one width out)."""
    edges = spec.edges
    if index == 0:
        return edges[0] - (edges[1] - edges[0]) / 2 if len(edges) > 1 else edges[0] - 1
    if index >= len(edges):
        return edges[-1] + (edges[-1] - edges[-2]) / 2 if len(edges) > 1 else edges[-1] + 1
    return (edges[index - 1] + edges[index]) / 2
