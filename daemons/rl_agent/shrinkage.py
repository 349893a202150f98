"""Empirical-Bayes shrinkage of group means: a group differs from its parent only as far as a
chi-square test of all the groups (p < 0.001) shows a difference beyond noise, and then by
tau^2 / (tau^2 + se^2). Pure numpy; the sizing model's estimates are built from these."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

Z_TEST = 3.0902  # one-sided 99.9 % normal quantile: the level of every test here
VAR_PRIOR = 5.0  # pseudo-trades of the book's variance in a small group's variance


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


def levels(
    groups: Sequence[np.ndarray],
    sizes: Sequence[int],
    n: np.ndarray,
    sy: np.ndarray,
    syy: np.ndarray,
    ratio: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """y per cell: the book's mean, with each bin dimension's shrunk difference (added, or as a
    ratio for a second moment, which scales with volatility squared), plus the cell's own
    shrunk difference from that parent. Also each cell's weight on its own data."""
    cells = len(n)
    grand = np.full(cells, float(sy.sum()) / max(float(n.sum()), 1.0))
    parent, fitted = grand.copy(), 0
    for group, size in zip(groups if len(groups) > 1 else (), sizes, strict=False):
        agg = [np.bincount(group, weights=v, minlength=size) for v in (n, sy, syy)]
        means, b = shrink(agg[0], agg[1], agg[2], grand[:size], 0)
        if ratio:
            parent = parent * (means[group] / np.maximum(grand, 1e-30))
        else:
            parent = parent + (means[group] - grand)
        fitted += (size - 1) * bool(b.max() > 0)
    return shrink(n, sy, syy, parent, fitted)
