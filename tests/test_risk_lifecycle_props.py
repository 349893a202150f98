"""Whole position lifecycles under hypothesis, through the code the daemon runs each cycle
(`kernel.compute`, then `state.prior`/`state.advance` on the packed memory it stores in Redis):
whatever the path, sigma, leverage (up to 125x), the position's own stop and the parameters,
a published stop is on the right side and never looser than any earlier one or `current_sl`,
an exit once proposed stays, and a position with valid inputs always has a stop or an exit."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from qtctl.daemons.risk_kernel import state
from qtctl.daemons.risk_kernel.kernel import BIT, Inputs, Params, Proposals, compute

STEP = st.tuples(
    st.floats(min_value=-0.06, max_value=0.06),  # the price move this cycle
    st.one_of(st.none(), st.floats(min_value=-0.05, max_value=0.3)),  # current_sl, from price
    st.one_of(st.none(), st.floats(min_value=0.0005, max_value=3.0)),  # a new sigma
)
PARAMS = st.builds(
    Params,
    stoploss=st.sampled_from([0.0, 0.02, 0.1, 0.5]),
    trailing=st.booleans(),
    trailing_positive=st.sampled_from([0.0, 0.01, 0.05]),
    trailing_offset=st.sampled_from([0.0, 0.01, 0.05]),
    trailing_only_offset=st.booleans(),
    tp_policy=st.sampled_from(["fixed-at-entry", "none", "minimal-roi"]),
    roi=st.just(((0.0, 0.04), (1800.0, 0.02), (3600.0, 0.0))),
)


@dataclass(frozen=True)
class Life:
    side: float
    sigma: float
    leverage: float
    steps: list[tuple[float, float | None, float | None]]
    params: Params

    @property
    def ident(self) -> str:
        return state.identity(None, "LONG" if self.side > 0 else "SHORT", "100")


LIVES = st.builds(
    Life,
    side=st.sampled_from([1.0, -1.0]),
    sigma=st.floats(min_value=0.0005, max_value=3.0),
    leverage=st.one_of(st.just(math.nan), st.floats(min_value=1, max_value=125)),
    steps=st.lists(STEP, min_size=3, max_size=40),
    params=PARAMS,
)


def cycle(
    life: Life, prior: state.Prior | None, price: float, cur: float, sigma: float, t: float
) -> tuple[Inputs, Proposals]:
    """One cycle as the daemon runs it: its memory read back, the best price merged."""
    s = life.side
    held = (math.nan,) * 3 if prior is None else (prior.peak, prior.sl, prior.tp)
    best = price if math.isnan(held[0]) else (max if s > 0 else min)(price, held[0])
    x = Inputs(
        side=np.array([s]),
        price=np.array([price]),
        entry=np.array([100.0]),
        peak=np.array([best]),
        sigma=np.array([sigma]),
        trend=np.array([0.5]),
        weights=np.array([[0.5, 0.3, 0.2]]),
        prev_sl=np.array([held[1]]),
        prev_tp=np.array([held[2]]),
        liquidation=np.array([math.nan]),
        current_sl=np.array([cur]),
        leverage=np.array([life.leverage]),
        age=np.array([t]),
        latched=np.array([prior is not None and prior.latched]),
    )
    return x, compute(x, life.params)


@settings(max_examples=250, deadline=None)
@given(LIVES)
def test_a_lifecycle_never_loosens_never_unlatches_never_loses_its_stop(life: Life) -> None:
    s, gap_pct = life.side, life.params.min_distance
    memory, price, sigma, tightest, latched = "", 100.0, life.sigma, math.nan, False
    for step, (move, sl_from_price, new_sigma) in enumerate(life.steps):
        t = 60.0 * step
        price *= 1 + move
        sigma = sigma if new_sigma is None else new_sigma
        cur = math.nan if sl_from_price is None else price * (1 - s * sl_from_price)
        prior = state.prior(memory, life.ident)
        if memory:  # a restarted daemon parses what this one remembered: the same memory
            parsed = state._parse(memory)
            assert parsed is not None and repr(parsed[0]) == repr(prior)
        x, out = cycle(life, prior, price, cur, sigma, t)
        assert out.valid[0], "valid inputs: a stop or an exit, never held"
        if latched:
            assert out.exit_now[0] and out.reasons[0] == BIT["latched"]
        if out.exit_now[0]:
            latched = True
        else:
            sl, tp = float(out.stop_loss[0]), float(out.take_profit[0])
            assert math.isfinite(sl) and sl > 0 and s * (price - sl) > gap_pct * price
            assert math.isnan(tp) or (tp > 0 and s * (tp - price) > gap_pct * price)
            for floor in (tightest, cur):
                assert math.isnan(floor) or s * (sl - floor) >= 0, (sl, floor)
            tightest = sl if math.isnan(tightest) else (max if s > 0 else min)(tightest, sl)
        memory = state.advance(x, out, [prior], [life.ident], [0], t)[0]
