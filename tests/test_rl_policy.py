"""The sizing model's own invariants: the batch path serves what the one-context path serves,
a checkpoint round-trips exactly, and one of another shape is refused (the daemon then starts
the model afresh and keeps its counters: tests/test_rl_agent.py)."""

from __future__ import annotations

import numpy as np
import pytest

from bench.rl_market import ACTIONS, COST, GAMMA, Market
from qtctl.daemons.rl_agent.policy import SizeModel, parse_bins

BINS = parse_bins(("confidence:0.2,0.4,0.6,0.8", "volatility:0.005,0.01,0.015,0.02,0.03"))


def trained(shape: str, n: int = 600) -> tuple[SizeModel, list[dict[str, float]]]:
    market = Market(shape, 1)
    rng = np.random.default_rng(1)
    conf, vol = market.contexts(n, rng)
    ret = market.returns(conf, vol, rng)
    model = SizeModel(BINS, ACTIONS, GAMMA, COST, 20)
    contexts = [
        {"confidence": float(c), "volatility": float(v)} for c, v in zip(conf, vol, strict=True)
    ]
    for i in range(0, n, 50):
        model.learn(contexts[i : i + 50], [float(r) for r in ret[i : i + 50]])
    return model, contexts


@pytest.mark.parametrize("shape", ["step", "noisy", "null"])
def test_the_batch_path_serves_what_one_context_gets(shape: str) -> None:
    model, contexts = trained(shape)
    odd = [{"confidence": 0.5}, {"confidence": 0.5, "volatility": 0.0}, {"volatility": 0.01}]
    probe = contexts[:200] + odd
    batch = model.multipliers(probe)
    assert batch.tolist() == [model.choose(c).multiplier for c in probe]
    assert set(batch.tolist()) <= set(ACTIONS)


def test_a_checkpoint_round_trips_and_another_shape_is_refused() -> None:
    model, contexts = trained("linear")
    copy = SizeModel(BINS, ACTIONS, GAMMA, COST, 20)
    copy.load(model.state())
    assert copy.multipliers(contexts).tolist() == model.multipliers(contexts).tolist()
    other = SizeModel(BINS, ACTIONS, GAMMA, COST, 20, linear=())
    with pytest.raises(ValueError, match="linear fields"):
        other.load(model.state())
    old = {k: v for k, v in model.state().items() if k not in ("logs", "score", "scale_field")}
    with pytest.raises(ValueError):
        copy.load(old)  # a checkpoint of the model before it had a scale
