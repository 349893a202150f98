"""The proposal maths for all positions at once (numpy, no per-position loop), and its invariants.

Formulas are the fleet's P1 kernel (see the Redis contract), with its defects removed:
- regime weights are normalised (a missing weight is an input error upstream, never a 0);
- the trend extension of the take-profit ramps in smoothly (no jump when a regime flips);
- the stop only ratchets toward the price, the take-profit never recedes and is anchored to the
  entry, not to the moving price;
- a stop the price has already crossed, or a take-profit it has reached, becomes an explicit
  exit-now signal instead of a stop on the wrong side;
- the stop keeps a buffer from the liquidation price;
- anything non-finite or non-positive yields no proposal at all.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

PARAMS_VERSION = "p1.1"
Array = NDArray[np.float64]

# Reason bits, joined into reason codes for each proposal.
REASONS = (
    "trail-active",
    "sl-held",
    "tp-held",
    "liq-buffer",
    "tp-extended",
    "exit-stop-crossed",
    "exit-tp-reached",
    "exit-liquidation-near",
    "invalid-input",
)
BIT = {name: 1 << i for i, name in enumerate(REASONS)}


@dataclass(frozen=True)
class Params:
    """Kernel parameters; `version` goes into every proposal."""

    min_stop: float = 0.005
    min_tp: float = 0.01
    min_trail: float = 0.005
    min_distance: float = 0.001  # ticks + fees: no stop or target closer to the price than this
    liq_buffer: float = 0.01  # the stop stays this far (fraction) inside the liquidation price
    version: str = PARAMS_VERSION


@dataclass(frozen=True)
class Inputs:
    """One row per position; side is +1 (LONG) or -1 (SHORT); NaN where unknown (prev_*, liq)."""

    side: Array
    price: Array
    entry: Array
    peak: Array  # best price since entry: highest for a long, lowest for a short
    sigma: Array
    trend: Array  # trend strength 0..1 (the contract's `ts`)
    weights: Array  # (n, 3): p_trend, p_mr, p_chop
    prev_sl: Array
    prev_tp: Array
    liquidation: Array


@dataclass(frozen=True)
class Proposals:
    """Outputs per position; `valid` False rows must not be published."""

    stop_loss: Array
    take_profit: Array
    trailing_stop: Array  # NaN until the trail is active
    trailing_activation: Array
    stop_dist: Array
    tp_dist: Array
    trail_gap: Array
    weights: Array
    exit_now: NDArray[np.bool_]
    reasons: NDArray[np.int64]
    valid: NDArray[np.bool_]


def compute(x: Inputs, p: Params = Params()) -> Proposals:
    """Proposals for every row; deterministic for the same inputs."""
    n = len(x.price)
    with np.errstate(all="ignore"):
        # Column by column: reductions over a (n, 3) axis are slow in numpy.
        w0, w1, w2 = x.weights[:, 0], x.weights[:, 1], x.weights[:, 2]
        finite = (
            np.isfinite(x.price)
            & np.isfinite(x.entry)
            & np.isfinite(x.peak)
            & np.isfinite(x.sigma)
            & np.isfinite(x.trend)
            & np.isfinite(w0)
            & np.isfinite(w1)
            & np.isfinite(w2)
            & (np.abs(x.side) == 1)
        )
        positive = (x.price > 0) & (x.entry > 0) & (x.peak > 0) & (x.sigma >= 0)
        wsum = w0 + w1 + w2
        ok = finite & positive & (w0 >= 0) & (w1 >= 0) & (w2 >= 0) & (wsum > 0)
        scale = np.where(ok, 1 / np.where(wsum > 0, wsum, 1), 0)
        pt = np.where(ok, w0 * scale, 0)  # NaN * 0 is NaN: mask, do not just scale
        pmr = np.where(ok, w1 * scale, 0)
        pch = np.where(ok, w2 * scale, 0)
        w = np.stack([pt, pmr, pch], axis=1)
        sigma = np.where(ok, x.sigma, 0)
        trend = np.clip(np.where(ok, x.trend, 0), 0, 1)

        stop = np.maximum(p.min_stop, (1.5 * pt + 0.8 * pmr + 1.0 * pch) * sigma)
        # The P1 extension switched on at p_trend > 0.3 and ts > 0.1; ramp both in over 0.1.
        gate = np.clip((pt - 0.3) / 0.1, 0, 1) * np.clip((trend - 0.1) / 0.1, 0, 1)
        ext = 1 + np.minimum(0.3, 0.5 * trend * pt * gate)
        tp = np.maximum(p.min_tp, (2.5 * pt + 1.2 * pmr + 1.5 * pch) * sigma * ext)
        trail = np.maximum(p.min_trail, (1.2 * pt + 1.5 * pmr + 1.3 * pch) * sigma)

        s = np.where(ok, x.side, 1.0)
        price, entry = np.where(ok, x.price, 1.0), np.where(ok, x.entry, 1.0)
        # Work in "long space": multiply by the side so that one set of formulas serves both.
        peak = np.where(ok, x.peak, price)
        best = np.where(s > 0, np.maximum(peak, price), np.minimum(peak, price))
        activation = entry * (1 + s * stop)  # 1R in profit
        active = s * (best - activation) >= 0
        trailing = np.where(active, best * (1 - s * trail), np.nan)
        candidate = price * (1 - s * stop)
        candidate = np.where(active & (s * (trailing - candidate) > 0), trailing, candidate)
        reasons = np.where(active, BIT["trail-active"], 0).astype(np.int64)

        held_sl = np.isfinite(x.prev_sl) & (x.prev_sl > 0)
        loosen = held_sl & (s * (x.prev_sl - candidate) > 0)
        sl = np.where(loosen, x.prev_sl, candidate)
        reasons |= np.where(loosen, BIT["sl-held"], 0)

        liq_known = np.isfinite(x.liquidation) & (x.liquidation > 0)
        floor = x.liquidation * (1 + s * p.liq_buffer)
        below_liq = liq_known & (s * (floor - sl) > 0)
        sl = np.where(below_liq, floor, sl)
        reasons |= np.where(below_liq, BIT["liq-buffer"], 0)

        target = entry * (1 + s * tp)
        reasons |= np.where(ext > 1, BIT["tp-extended"], 0)
        held_tp = np.isfinite(x.prev_tp) & (x.prev_tp > 0)
        recede = held_tp & (s * (x.prev_tp - target) > 0)
        take = np.where(recede, x.prev_tp, target)
        reasons |= np.where(recede, BIT["tp-held"], 0)

        gap = p.min_distance * price
        crossed = s * (price - sl) <= gap
        reached = s * (take - price) <= gap
        liq_near = below_liq & crossed
        exit_now = ok & (crossed | reached)
        reasons |= np.where(ok & crossed & ~liq_near, BIT["exit-stop-crossed"], 0)
        reasons |= np.where(ok & liq_near, BIT["exit-liquidation-near"], 0)
        reasons |= np.where(ok & reached & ~crossed, BIT["exit-tp-reached"], 0)
        reasons |= np.where(~ok, BIT["invalid-input"], 0)
    out = Proposals(
        stop_loss=sl,
        take_profit=take,
        trailing_stop=trailing,
        trailing_activation=activation,
        stop_dist=stop,
        tp_dist=tp,
        trail_gap=trail,
        weights=w,
        exit_now=exit_now,
        reasons=reasons,
        valid=ok.copy(),
    )
    bad = ok & ~exit_now & ~invariants_hold(x, out, p)
    out.valid[bad] = False
    out.reasons[bad] |= BIT["invalid-input"]
    assert len(out.valid) == n
    return out


def invariants_hold(x: Inputs, out: Proposals, p: Params) -> NDArray[np.bool_]:
    """Per row: the published stop and target are sane (checked again before publishing)."""
    s, price, sl, tp = x.side, x.price, out.stop_loss, out.take_profit
    with np.errstate(all="ignore"):
        finite = np.isfinite(sl) & np.isfinite(tp) & (sl > 0) & (tp > 0)
        gap = p.min_distance * price
        sides = (s * (price - sl) > gap) & (s * (tp - price) > gap)
        ratchet = ~np.isfinite(x.prev_sl) | (x.prev_sl <= 0) | (s * (sl - x.prev_sl) >= 0)
        no_recede = ~np.isfinite(x.prev_tp) | (x.prev_tp <= 0) | (s * (tp - x.prev_tp) >= 0)
        liq = ~np.isfinite(x.liquidation) | (x.liquidation <= 0)
        liq |= s * (sl - x.liquidation * (1 + s * p.liq_buffer)) >= -1e-9 * price
        total = out.weights[:, 0] + out.weights[:, 1] + out.weights[:, 2]
        weights = np.abs(total - 1) < 1e-9
    return finite & sides & ratchet & no_recede & liq & weights


def reason_codes(bits: int) -> str:
    """`trail-active,sl-held` from a reason bit set."""
    return ",".join(name for name in REASONS if bits & BIT[name])
