"""The risk kernel's maths under hypothesis: whatever the inputs (NaN, inf, zero, negative, huge),
a proposal that is published is on the right side, ratchets, never recedes, respects the
liquidation buffer, and is deterministic and continuous in the regime weights."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from qtctl.daemons.risk_kernel.kernel import BIT, Inputs, Params, compute, invariants_hold

WILD = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(min_value=1e-6, max_value=1e9),
    st.sampled_from([0.0, -1.0, 1e308, 5e-324]),
)
SANE = st.floats(min_value=0.01, max_value=1e6)
WEIGHT = st.one_of(st.floats(min_value=0, max_value=1), WILD)


@st.composite
def rows(draw: st.DrawFn, wild: bool) -> dict[str, float]:
    num = WILD if wild else SANE
    price = draw(num)
    return {
        "side": draw(st.sampled_from([1.0, -1.0] + ([0.0, 2.0, math.nan] if wild else []))),
        "price": price,
        "entry": draw(num),
        "peak": draw(num),
        "sigma": draw(WILD if wild else st.floats(min_value=0, max_value=0.5)),
        "trend": draw(WILD if wild else st.floats(min_value=0, max_value=1)),
        "w0": draw(WEIGHT if wild else st.floats(min_value=0, max_value=1)),
        "w1": draw(WEIGHT if wild else st.floats(min_value=0, max_value=1)),
        "w2": draw(WEIGHT if wild else st.floats(min_value=0.01, max_value=1)),
        "prev_sl": draw(st.one_of(st.just(math.nan), num)),
        "prev_tp": draw(st.one_of(st.just(math.nan), num)),
        "liq": draw(st.one_of(st.just(math.nan), num)),
    }


def inputs(batch: list[dict[str, float]]) -> Inputs:
    col = lambda k: np.array([r[k] for r in batch], dtype=np.float64)  # noqa: E731
    return Inputs(
        side=col("side"),
        price=col("price"),
        entry=col("entry"),
        peak=col("peak"),
        sigma=col("sigma"),
        trend=col("trend"),
        weights=np.stack([col("w0"), col("w1"), col("w2")], axis=1),
        prev_sl=col("prev_sl"),
        prev_tp=col("prev_tp"),
        liquidation=col("liq"),
    )


DEFAULT = Params()


def check(x: Inputs, params: Params = DEFAULT) -> None:
    out = compute(x, params)
    published = out.valid & ~out.exit_now
    assert np.all(invariants_hold(x, out, params)[published])
    for i in np.flatnonzero(published):
        s, price, sl, tp = x.side[i], x.price[i], out.stop_loss[i], out.take_profit[i]
        assert math.isfinite(sl) and math.isfinite(tp) and sl > 0 and tp > 0
        if s > 0:
            assert sl < price < tp
        else:
            assert tp < price < sl
        if math.isfinite(x.prev_sl[i]) and x.prev_sl[i] > 0:
            assert s * (sl - x.prev_sl[i]) >= 0  # never loosens
        if math.isfinite(x.prev_tp[i]) and x.prev_tp[i] > 0:
            assert s * (tp - x.prev_tp[i]) >= 0  # never recedes
    for i in np.flatnonzero(~out.valid):
        assert out.reasons[i] & BIT["invalid-input"]
    for i in np.flatnonzero(out.exit_now):  # an explicit exit, with its reason
        assert out.reasons[i] & (
            BIT["exit-stop-crossed"] | BIT["exit-tp-reached"] | BIT["exit-liquidation-near"]
        )
    again = compute(x, params)  # deterministic
    for a, b in ((out.stop_loss, again.stop_loss), (out.take_profit, again.take_profit)):
        assert np.array_equal(a, b, equal_nan=True)


@settings(max_examples=300, deadline=None)
@given(st.lists(rows(wild=True), min_size=1, max_size=40))
def test_wild_inputs_never_publish_an_unsafe_proposal(batch: list[dict[str, float]]) -> None:
    check(inputs(batch))


@settings(max_examples=300, deadline=None)
@given(st.lists(rows(wild=False), min_size=1, max_size=40))
def test_sane_inputs_hold_every_invariant(batch: list[dict[str, float]]) -> None:
    check(inputs(batch))


def test_non_finite_input_gives_no_proposal_never_a_zero_price() -> None:
    base = {
        "side": 1.0,
        "price": 100.0,
        "entry": 95.0,
        "peak": 101.0,
        "sigma": 0.01,
        "trend": 0.5,
        "w0": 0.5,
        "w1": 0.3,
        "w2": 0.2,
        "prev_sl": math.nan,
        "prev_tp": math.nan,
        "liq": math.nan,
    }
    bad = [dict(base, **{k: math.nan}) for k in ("price", "sigma", "w0", "entry")]
    out = compute(inputs([base, *bad]))
    assert out.valid.tolist() == [True, False, False, False, False]
    assert out.stop_loss[0] > 0


def test_weights_are_normalised_and_the_output_is_continuous_across_a_regime_flip() -> None:
    base = {
        "side": 1.0,
        "price": 100.0,
        "entry": 90.0,
        "peak": 100.0,
        "sigma": 0.02,
        "trend": 0.8,
        "prev_sl": math.nan,
        "prev_tp": math.nan,
        "liq": math.nan,
    }
    trend = np.linspace(0, 1, 2001)
    batch = [dict(base, w0=t, w1=(1 - t) / 2, w2=(1 - t) / 2) for t in trend]
    out = compute(inputs(batch))
    assert np.allclose(out.weights.sum(axis=1), 1)
    for series in (out.stop_dist, out.tp_dist, out.trail_gap):
        assert np.max(np.abs(np.diff(series))) < 1e-3  # no jump when trend overtakes the rest
    doubled = compute(inputs([dict(base, w0=2.0, w1=1.0, w2=1.0)]))
    halved = compute(inputs([dict(base, w0=0.5, w1=0.25, w2=0.25)]))
    assert doubled.take_profit[0] == halved.take_profit[0]


def test_crossed_stop_is_an_exit_signal_not_a_stop_on_the_wrong_side() -> None:
    """The seed's `SL=$106.1072 TP=$106.0695`: the price fell through the held stop."""
    row = {
        "side": 1.0,
        "price": 106.05,
        "entry": 104.0,
        "peak": 107.9,
        "sigma": 0.004,
        "trend": 0.2,
        "w0": 0.2,
        "w1": 0.5,
        "w2": 0.3,
        "prev_sl": 106.1072,
        "prev_tp": math.nan,
        "liq": math.nan,
    }
    out = compute(inputs([row]))
    assert out.exit_now[0] and out.reasons[0] & BIT["exit-stop-crossed"]
    assert out.stop_loss[0] >= 106.1072  # never loosened to "fix" the side


def test_liquidation_buffer_and_exit_when_liquidation_is_near() -> None:
    row = {
        "side": -1.0,
        "price": 100.0,
        "entry": 100.0,
        "peak": 100.0,
        "sigma": 0.05,
        "trend": 0.0,
        "w0": 0.0,
        "w1": 0.0,
        "w2": 1.0,
        "prev_sl": math.nan,
        "prev_tp": math.nan,
        "liq": 103.0,
    }
    out = compute(inputs([row, dict(row, liq=100.5)]))
    assert out.valid[0] and not out.exit_now[0]
    assert out.stop_loss[0] <= 103.0 * (1 - 0.01) + 1e-9  # inside the liquidation buffer
    assert out.exit_now[1] and out.reasons[1] & BIT["exit-liquidation-near"]
