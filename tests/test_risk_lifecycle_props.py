"""Whole position lifecycles under hypothesis, through the code the daemon runs each cycle
(`kernel.compute`, then `state.prior`/`state.advance` on the packed memory it stores in Redis):
whatever the path, sigma, leverage (up to 125x), the position's own stop and the parameters,
a published stop is on the right side and never looser than any earlier one or `current_sl`,
an exit once proposed stays, and a position with valid inputs always has a stop or an exit;
then the same through Redis and the daemon, with restarts and partial closes."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

import numpy as np
import redis
from hypothesis import given, settings
from hypothesis import strategies as st

from qtctl.daemons.risk_kernel import state
from qtctl.daemons.risk_kernel.kernel import BIT, Inputs, Params, Proposals, compute
from tests.support.redis_server import RedisServer
from tests.test_risk_kernel import kernel as make_kernel
from tests.test_risk_kernel import market, position
from tests.test_risk_lifecycle import PROPOSAL, proposal

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


def test_random_lifecycles_through_redis_restarts_and_partial_closes(
    redis_server: RedisServer,
) -> None:
    """Opens, partial closes, restarts with and without the proposal hash, prices through the
    stop and the target and back, leverage up to 125x, shorts with a large sigma: every
    published stop is on the right side and never looser than an earlier one or current_sl,
    exits stay latched, and a position with valid inputs always has a stop or an exit."""
    client = redis.Redis(port=redis_server.port, decode_responses=True)
    rng = random.Random(19)
    books: dict[str, dict[str, object]] = {}
    for i in range(24):
        side = "SHORT" if i % 2 else "LONG"
        lev = rng.choice([None, 5, 20, 50, 125])
        sigma = rng.choice([0.005, 0.02, 0.3, 0.6]) if side == "SHORT" else 0.01
        books[f"P{i:02d}USDT"] = {
            "side": side,
            "price": 100.0,
            "qty": 4,
            "lev": lev,
            "sigma": sigma,
        }
    daemon = make_kernel(redis_server)
    floors: dict[str, float] = {}  # symbol -> the tightest stop published so far or current_sl
    for tick in range(30):
        for symbol, b in books.items():
            b["price"] *= 1 + rng.gauss(0, 0.006)
            fields = {"side": b["side"], "entry_price": 100, "current_price": b["price"]}
            if tick and rng.random() < 0.1 and b["qty"] > 1:
                b["qty"] -= 1  # a partial close: the same position
            if rng.random() < 0.1:
                sign = 1 if b["side"] == "LONG" else -1
                b["current_sl"] = b["price"] * (1 - sign * rng.uniform(0.002, 0.03))
            fields |= {"qty": b["qty"]} | ({"leverage": b["lev"]} if b["lev"] else {})
            fields |= {"current_sl": b["current_sl"]} if "current_sl" in b else {}
            position(client, symbol, **fields)
            market(client, symbol, sigma=b["sigma"])
        if tick % 7 == 6:  # a restart, every other one without the proposal hashes
            daemon = make_kernel(redis_server)
            if tick % 14 == 13:
                client.delete(*(PROPOSAL + s for s in books))
        daemon.cycle()
        for symbol, b in books.items():
            got = proposal(client, symbol)
            assert got["trading_state"] in ("active", "exit-now"), (symbol, got)
            sign = 1 if b["side"] == "LONG" else -1
            if got["trading_state"] == "exit-now":
                b["exited"] = True
                continue
            assert not b.get("exited"), f"{symbol}: exit-now was not latched"
            sl = float(got["stop_loss"])
            assert sign * (b["price"] - sl) > 0
            if got["take_profit"]:
                assert (
                    float(got["take_profit"]) > 0
                    and sign * (float(got["take_profit"]) - b["price"]) > 0
                )
            for floor in (floors.get(symbol), b.get("current_sl")):
                assert floor is None or sign * (sl - floor) >= -1e-9 * sl, (symbol, sl, floor)
            floors[symbol] = sl
    assert sum(1 for b in books.values() if b.get("exited")) >= 3
    assert sum(1 for b in books.values() if not b.get("exited")) >= 3
