"""The proposal maths for all positions at once (numpy, no per-position loop), and its invariants.

Formulas are the fleet's P1 kernel (see the Redis contract) with its defects removed, and the
stop placed as Freqtrade places it:
- regime weights are normalised (a missing weight is an input error upstream, never a 0);
- the initial stop is a distance from the entry price (`stoploss`, or the regime-weighted sigma
  distance); trailing follows the best price since entry (Freqtrade's `trailing_stop`,
  `trailing_stop_positive`, `trailing_stop_positive_offset`, `trailing_only_offset_is_reached`);
- the stop never loosens past the kernel's own last stop nor the position's `current_sl`;
- the target follows a policy (fixed at entry, none, or a minimal-ROI table by age), capped, so a
  short's target is always above zero; a target that cannot be formed never removes the stop;
- the stop keeps a buffer inside the liquidation price, given or estimated from the leverage
  (isolated margin), and `leverage-too-high` says when no stop fits even at the entry;
- a stop the price has crossed (a position first seen beyond its initial stop included), a target
  reached, or no room inside the liquidation buffer is an explicit exit-now signal, and an exit
  once latched stays (the caller keeps the latch);
- anything non-finite, non-positive or malformed yields no proposal at all.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

PARAMS_VERSION = "p2.0"
Array = NDArray[np.float64]
HUGE = 1e15
TP_POLICIES = ("fixed-at-entry", "none", "minimal-roi")

# Reason bits, joined into reason codes for each proposal, in this order. The exit reasons come
# last and a row carries at most one, so the last code of an exit is its reason.
REASONS = (
    "trail-active",
    "stop-trailed",
    "sl-held",
    "sl-current-held",
    "liq-buffer",
    "liq-estimated",
    "leverage-too-high",
    "tp-extended",
    "no-target",
    "invalid-input",
    "invariant-failed",
    "latched",
    "exit-stop-crossed",
    "exit-tp-reached",
    "exit-liquidation-near",
)
BIT = {name: 1 << i for i, name in enumerate(REASONS)}
EXITS = ("exit-stop-crossed", "exit-tp-reached", "exit-liquidation-near")
EXIT_BITS = BIT["exit-stop-crossed"] | BIT["exit-tp-reached"] | BIT["exit-liquidation-near"]


@dataclass(frozen=True)
class Params:
    """Kernel parameters (fractions, not percent); `version` goes into every proposal."""

    min_stop: float = 0.005
    min_tp: float = 0.01
    min_trail: float = 0.005
    min_distance: float = 0.001  # ticks + fees: no stop or target closer to the price than this
    liq_buffer: float = 0.01  # the stop stays this far (fraction) inside the liquidation price
    stoploss: float = 0.0  # Freqtrade's stoploss as a positive ratio on margin; 0: sigma distance
    max_stop: float = 0.5  # no stop or trail further than this from its anchor
    trailing: bool = True
    trailing_positive: float = 0.0  # ratio on margin; 0: the regime-weighted trail gap
    trailing_offset: float = 0.0  # profit ratio on margin at which the positive trail applies
    trailing_only_offset: bool = False
    tp_policy: str = "fixed-at-entry"
    roi: tuple[tuple[float, float], ...] = ()  # (age_sec, profit ratio on margin), by age
    max_tp: float = 0.5
    maintenance_margin: float = 0.005
    version: str = PARAMS_VERSION


def _nan() -> Array:
    return np.empty(0)


@dataclass(frozen=True)
class Inputs:
    """One row per position; side is +1 (LONG) or -1 (SHORT); NaN where unknown (prev_*, liq).

    The optional columns (current_sl .. bad) may be left empty: they then read as unknown."""

    side: Array
    price: Array
    entry: Array
    peak: Array  # best price since entry: highest for a long, lowest for a short
    sigma: Array
    trend: Array  # trend strength 0..1 (the contract's `ts`)
    weights: Array  # (n, 3): p_trend, p_mr, p_chop
    prev_sl: Array  # the kernel's own last stop (its ratchet)
    prev_tp: Array  # the kernel's own target (fixed at entry)
    liquidation: Array
    current_sl: Array = field(default_factory=_nan)  # the position's stop: a floor
    leverage: Array = field(default_factory=_nan)
    age: Array = field(default_factory=_nan)  # seconds since the position opened
    latched: NDArray[np.bool_] = field(default_factory=lambda: np.empty(0, dtype=bool))
    bad: NDArray[np.bool_] = field(default_factory=lambda: np.empty(0, dtype=bool))

    def __post_init__(self) -> None:
        n = len(self.price)
        for name in ("current_sl", "leverage", "age"):
            if len(getattr(self, name)) != n:
                object.__setattr__(self, name, np.full(n, np.nan))
        for name in ("latched", "bad"):
            if len(getattr(self, name)) != n:
                object.__setattr__(self, name, np.zeros(n, dtype=bool))


@dataclass(frozen=True)
class Proposals:
    """Outputs per position; `valid` False rows must not be published."""

    stop_loss: Array
    take_profit: Array  # NaN: no target (policy none, or none could be formed)
    trailing_stop: Array  # NaN until the positive trail applies
    trailing_activation: Array
    stop_dist: Array
    tp_dist: Array
    trail_gap: Array
    weights: Array
    exit_now: NDArray[np.bool_]
    reasons: NDArray[np.int64]
    valid: NDArray[np.bool_]
    initial_stop: Array
    liquidation: Array  # the liquidation price used (given or estimated), NaN if none


@dataclass(frozen=True)
class _Rows:
    """The masked columns every step reads."""

    ok: NDArray[np.bool_]
    s: Array
    price: Array
    entry: Array
    lev: Array
    lev_known: NDArray[np.bool_]


def compute(x: Inputs, p: Params = Params()) -> Proposals:
    """Proposals for every row; deterministic for the same inputs."""
    with np.errstate(all="ignore"):
        r, w = _rows(x)
        stop, tp, trail, ext = _distances(x, p, r, w)
        peak = np.where(r.ok, x.peak, r.price)
        best = np.where(r.s > 0, np.maximum(peak, r.price), np.minimum(peak, r.price))
        initial = r.entry * (1 - r.s * stop)
        sl, trailing, activation, reasons = _trail(p, r, best, initial, stop, trail)
        sl = _floors(x, r, sl, reasons)
        liq = liquidation_price(x, p, r.s, r.entry, r.lev, r.lev_known)
        floor = liq * (1 + r.s * p.liq_buffer)
        below = r.ok & np.isfinite(liq) & (r.s * (floor - sl) > 0)
        sl = np.where(below, floor, sl)
        reasons |= np.where(below, BIT["liq-buffer"], 0)
        reasons |= np.where(np.isfinite(liq) & ~_known(x.liquidation), BIT["liq-estimated"], 0)
        no_room = np.isfinite(liq) & (r.s * (r.entry - floor) <= p.min_distance * r.entry)
        reasons |= np.where(r.ok & no_room, BIT["leverage-too-high"], 0)
        reasons |= np.where(r.ok & (r.s * (sl - initial) > 1e-12 * r.price), BIT["stop-trailed"], 0)
        take = _target(x, p, r, tp, ext, reasons)
        exit_now = _exits(x, p, r, sl, take, below, reasons)
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
        valid=r.ok | x.latched,
        initial_stop=initial,
        liquidation=liq,
    )
    bad = r.ok & ~exit_now & ~invariants_hold(x, out, p)
    out.valid[bad] = False
    out.reasons[bad] |= BIT["invariant-failed"]
    return out


def _rows(x: Inputs) -> tuple[_Rows, Array]:
    # Column by column: reductions over a (n, 3) axis are slow in numpy.
    w0, w1, w2 = x.weights[:, 0], x.weights[:, 1], x.weights[:, 2]
    finite = np.isfinite(x.price) & np.isfinite(x.entry) & np.isfinite(x.peak)
    finite &= np.isfinite(x.sigma) & np.isfinite(x.trend) & (np.abs(x.side) == 1)
    finite &= np.isfinite(w0) & np.isfinite(w1) & np.isfinite(w2)
    positive = (x.price > 0) & (x.entry > 0) & (x.peak > 0) & (x.sigma >= 0)
    # Beyond any real price a product overflows; such a number is an input error.
    inside = (x.price < HUGE) & (x.entry < HUGE) & (x.peak < HUGE)
    for optional in (x.prev_sl, x.prev_tp, x.liquidation, x.current_sl, x.leverage):
        inside &= ~(optional >= HUGE)
    lev_known = np.isfinite(x.leverage) & (x.leverage >= 1)
    lev_sane = ~np.isfinite(x.leverage) | lev_known
    wsum = w0 + w1 + w2
    ok = finite & positive & (w0 >= 0) & (w1 >= 0) & (w2 >= 0) & (wsum > 1e-12) & (wsum < HUGE)
    ok &= inside & lev_sane & ~x.bad
    scale = np.where(ok, 1 / np.where(wsum > 0, wsum, 1), 0)
    # NaN * 0 is NaN: mask, do not just scale.
    w = np.stack([np.where(ok, v * scale, 0) for v in (w0, w1, w2)], axis=1)
    rows = _Rows(
        ok=ok,
        s=np.where(ok, x.side, 1.0),
        price=np.where(ok, x.price, 1.0),
        entry=np.where(ok, x.entry, 1.0),
        lev=np.where(ok & lev_known, x.leverage, 1.0),
        lev_known=ok & lev_known,
    )
    return rows, w


def _distances(x: Inputs, p: Params, r: _Rows, w: Array) -> tuple[Array, Array, Array, Array]:
    """Stop, target and trail distances as fractions of price; the ratios on margin (Freqtrade's)
    are divided by the leverage, the sigma distances are price distances already."""
    pt, pmr, pch = w[:, 0], w[:, 1], w[:, 2]
    sigma = np.where(r.ok, x.sigma, 0)
    trend = np.clip(np.where(r.ok, x.trend, 0), 0, 1)
    stop = np.maximum(p.min_stop, (1.5 * pt + 0.8 * pmr + 1.0 * pch) * sigma)
    if p.stoploss > 0:
        stop = p.stoploss / r.lev
    # The P1 extension switched on at p_trend > 0.3 and ts > 0.1; ramp both in over 0.1.
    gate = np.clip((pt - 0.3) / 0.1, 0, 1) * np.clip((trend - 0.1) / 0.1, 0, 1)
    ext = 1 + np.minimum(0.3, 0.5 * trend * pt * gate)
    tp = np.maximum(p.min_tp, (2.5 * pt + 1.2 * pmr + 1.5 * pch) * sigma * ext)
    trail = np.maximum(p.min_trail, (1.2 * pt + 1.5 * pmr + 1.3 * pch) * sigma)
    if p.trailing_positive > 0:
        trail = np.full(len(sigma), p.trailing_positive) / r.lev
    return (
        np.minimum(stop, p.max_stop),
        np.minimum(tp, p.max_tp),
        np.minimum(trail, p.max_stop),
        ext,
    )


def _trail(
    p: Params, r: _Rows, best: Array, initial: Array, stop: Array, trail: Array
) -> tuple[Array, Array, Array, NDArray[np.int64]]:
    """Freqtrade's trailing rule on the best price since entry: the stop distance trails from
    the start, the positive trail once the profit at the best price passes the offset."""
    n = len(best)
    activation = r.entry * (1 + r.s * p.trailing_offset / r.lev)
    if not p.trailing:
        return initial, np.full(n, np.nan), activation, np.zeros(n, dtype=np.int64)
    profit = r.s * (best - r.entry) / r.entry * r.lev  # Freqtrade's profit ratio at the bound
    allowed = ~(p.trailing_only_offset & (profit < p.trailing_offset))
    positive = allowed & (profit > p.trailing_offset)
    level = best * (1 - r.s * np.where(positive, trail, stop))
    sl = np.where(allowed & (r.s * (level - initial) > 0), level, initial)
    trailing = np.where(positive, best * (1 - r.s * trail), np.nan)
    reasons = np.where(r.ok & positive, BIT["trail-active"], 0).astype(np.int64)
    return sl, trailing, activation, reasons


def _known(values: Array) -> NDArray[np.bool_]:
    return np.isfinite(values) & (values > 0)


def _floors(x: Inputs, r: _Rows, sl: Array, reasons: NDArray[np.int64]) -> Array:
    """Never looser than the kernel's last stop nor the position's own stop."""
    for values, bit in ((x.prev_sl, "sl-held"), (x.current_sl, "sl-current-held")):
        held = _known(values) & (r.s * (values - sl) > 0)
        sl = np.where(held, values, sl)
        reasons |= np.where(r.ok & held, BIT[bit], 0)
    return sl


def liquidation_price(
    x: Inputs, p: Params, s: Array, entry: Array, lev: Array, lev_known: NDArray[np.bool_]
) -> Array:
    """The given liquidation price, else isolated margin's estimate from the leverage:
    entry x (1 - 1/leverage + maintenance margin) for a long, mirrored for a short."""
    estimate = entry * (1 - s * (1 / lev - p.maintenance_margin))
    estimate = np.where(lev_known & (estimate > 0), estimate, np.nan)
    return np.where(_known(x.liquidation), x.liquidation, estimate)


def roi_at(p: Params, age: Array) -> Array:
    """The minimal-ROI table's profit ratio for each age (its first entry when age is unknown)."""
    out = np.full(len(age), np.nan)
    known = np.where(np.isfinite(age), age, 0.0)
    for start, ratio in p.roi:  # ascending ages: a later entry wins once reached
        out = np.where(known >= start, ratio, out)
    return out


def _target(
    x: Inputs, p: Params, r: _Rows, tp: Array, ext: Array, reasons: NDArray[np.int64]
) -> Array:
    n = len(tp)
    if p.tp_policy == "none":
        take = np.full(n, np.nan)
    elif p.tp_policy == "minimal-roi":
        ratio = np.minimum(roi_at(p, x.age) / r.lev, p.max_tp)
        take = r.entry * (1 + r.s * ratio)
    else:  # fixed at entry: the first target the kernel formed stays
        take = np.where(_known(x.prev_tp), x.prev_tp, r.entry * (1 + r.s * tp))
        reasons |= np.where(r.ok & ~_known(x.prev_tp) & (ext > 1), BIT["tp-extended"], 0)
    formed = _known(take)
    reasons |= np.where(r.ok & ~formed, BIT["no-target"], 0)
    return np.where(formed, take, np.nan)


def _exits(
    x: Inputs,
    p: Params,
    r: _Rows,
    sl: Array,
    take: Array,
    below: NDArray[np.bool_],
    reasons: NDArray[np.int64],
) -> NDArray[np.bool_]:
    gap = p.min_distance * r.price
    live = r.ok & ~x.latched
    crossed = live & (r.s * (r.price - sl) <= gap)
    reached = live & np.isfinite(take) & (r.s * (take - r.price) <= gap)
    liq_near = below & crossed
    reasons |= np.where(crossed & ~liq_near, BIT["exit-stop-crossed"], 0)
    reasons |= np.where(liq_near, BIT["exit-liquidation-near"], 0)
    reasons |= np.where(reached & ~crossed, BIT["exit-tp-reached"], 0)
    reasons |= np.where(~r.ok & ~x.latched, BIT["invalid-input"], 0)
    reasons[x.latched] = BIT["latched"]
    exit_now: NDArray[np.bool_] = crossed | reached | x.latched
    return exit_now


def invariants_hold(x: Inputs, out: Proposals, p: Params) -> NDArray[np.bool_]:
    """Per row: the published stop and target are sane (checked again before publishing)."""
    s, price, sl, tp = x.side, x.price, out.stop_loss, out.take_profit
    with np.errstate(all="ignore"):
        gap = p.min_distance * price
        stop = np.isfinite(sl) & (sl > 0) & (s * (price - sl) > gap)
        no_tp = np.isnan(tp)
        target = no_tp | (np.isfinite(tp) & (tp > 0) & (s * (tp - price) > gap))
        ratchet = ~_known(x.prev_sl) | (s * (sl - x.prev_sl) >= 0)
        ratchet &= ~_known(x.current_sl) | (s * (sl - x.current_sl) >= 0)
        no_recede = ~_known(x.prev_tp) | no_tp | (s * (tp - x.prev_tp) >= 0)
        if p.tp_policy == "minimal-roi":  # the table lowers the target with age, by design
            no_recede = np.ones(len(sl), dtype=bool)
        liq = out.liquidation
        room = ~np.isfinite(liq) | (s * (sl - liq * (1 + s * p.liq_buffer)) >= -1e-9 * price)
        total = out.weights[:, 0] + out.weights[:, 1] + out.weights[:, 2]
        weights = np.abs(total - 1) < 1e-9
    result: NDArray[np.bool_] = stop & target & ratchet & no_recede & room & weights
    return result


def reason_codes(bits: int) -> str:
    """`trail-active,sl-held` from a reason bit set."""
    return ",".join(name for name in REASONS if bits & BIT[name])


def exit_reason(bits: int) -> str:
    """The exit reason in a reason bit set ('' when it has none)."""
    return next((name for name in EXITS if bits & BIT[name]), "")
