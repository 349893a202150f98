"""`qtctl rl stats` and `qtctl rl evaluate`: what the agent learned, read from Redis and disk."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

BLOCKS = "▁▂▃▄▅▆▇█"


def sparkline(values: list[float]) -> str:
    """A one-line terminal plot."""
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return ""
    low, high = min(finite), max(finite)
    span = high - low or 1.0
    return "".join(
        BLOCKS[int((v - low) / span * (len(BLOCKS) - 1))] if math.isfinite(v) else " "
        for v in values
    )


def stats(client: Any, stats_key: str, stream: str, points: int) -> dict[str, Any]:
    """The stats hash and the learning curve from the stats stream."""
    current = client.hgetall(stats_key)
    history = list(reversed(client.xrevrange(stream, count=points)))
    curve = [_float(f.get("reward_mean")) for _, f in history]
    experiences = [_float(f.get("experiences")) for _, f in history]
    return {
        "stats": current,
        "rejects": json.loads(current.get("rejects") or "{}"),
        "reward_curve": curve,
        "experience_curve": experiences,
    }


def evaluate(
    client: Any,
    config: Any,
    count: int,
    policy: str = "learned",
    train: float = 0.5,
    clip: float = 20.0,
) -> dict[str, Any]:
    """Off-policy value of a sizing policy on held-out logged decisions.

    Decisions (`rl.decisions`, with the probability each multiplier was drawn with) are joined
    to the closed trades that name them. The older `train` share fits the reward model (and the
    `learned` policy); the newer rest is held out. On it: the full-information replay value
    (exact here: a trade's return tells the utility of every size), IPS, self-normalised IPS and
    doubly robust, importance weights clipped at `clip`, each with a 95 % interval. IPS needs
    true propensities: if any held-out decision lacks one, IPS, SNIPS and DR are refused.
    """
    from qtctl.daemons.rl_agent.daemon import build_model

    rows = joined(client, config, count)
    cut = int(len(rows) * train)
    fit, held = rows[:cut], rows[cut:]
    out: dict[str, Any] = {"decisions_joined": len(rows), "train": len(fit), "held_out": len(held)}
    if len(held) < 2:
        return {**out, "error": "fewer than 2 held-out decisions joined to a closed trade"}
    model = build_model(config)
    model.learn([r.context for r in fit], [r.ret for r in fit])
    target = _target(model, policy)
    if target is None:
        return {**out, "error": f"--policy {policy!r}: use learned or constant:MULTIPLIER"}
    chosen = np.asarray([target(r.context) for r in held])
    logged = np.asarray([r.multiplier for r in held])
    ret = np.asarray([r.ret for r in held])
    u = model.utility_of
    realised = np.asarray([u(m, x) for m, x in zip(logged, ret, strict=True)])
    out["policy"] = policy
    out["logged_value"] = _interval(realised)
    out["replay_value"] = _interval(np.asarray([u(m, x) for m, x in zip(chosen, ret, strict=True)]))
    prob = np.asarray([r.probability for r in held])
    if not np.all(np.isfinite(prob) & (prob > 0)):
        missing = int((~(np.isfinite(prob) & (prob > 0))).sum())
        out["ips_refused"] = f"{missing} of {len(held)} held-out decisions carry no true propensity"
        return out
    weight = np.minimum((chosen == logged) / prob, clip)
    out["clipped"] = int(((chosen == logged) / prob > clip).sum())
    out["ips_value"] = _interval(weight * realised)
    out["snips_value"] = _snips(weight, realised)
    guess = np.asarray([_q(model, r.context, m) for r, m in zip(held, logged, strict=True)])
    direct = np.asarray([_q(model, r.context, m) for r, m in zip(held, chosen, strict=True)])
    out["dr_value"] = _interval(direct + weight * (realised - guess))
    return out


@dataclass(frozen=True)
class Logged:
    """One logged decision and the return of the trade it sized."""

    context: dict[str, float]
    multiplier: float
    probability: float  # nan: not logged
    ret: float


def joined(client: Any, config: Any, count: int) -> list[Logged]:
    """The newest `count` decisions that a closed trade names, oldest first."""
    from qtctl.daemons.rl_agent.daemon import parse_sources
    from qtctl.daemons.rl_agent.records import Rejected, experience

    s = config.rl
    sources = parse_sources(s.sources)
    rets: dict[str, float] = {}
    for _, fields in client.xrevrange(config.streams.prefix + s.trade_stream, count=4 * count):
        decision = fields.get(s.decision_field)
        if decision and decision not in rets:
            try:
                rets[decision] = experience(fields, sources).ret
            except Rejected:
                continue
    rows = []
    for _, f in reversed(client.xrevrange(config.streams.prefix + s.decision_log, count=4 * count)):
        if f.get("decision_id") in rets:
            context = {k: float(v) for k, v in _object(f.get("features")).items() if _number(v)}
            prob = _float(f.get("probability"))
            rows.append(Logged(context, _float(f.get("multiplier")), prob, rets[f["decision_id"]]))
    return rows[-count:]


def _target(model: Any, policy: str) -> Any:
    if policy == "learned":
        return lambda ctx: model.choose(ctx).multiplier
    kind, _, value = policy.partition(":")
    if kind == "constant" and math.isfinite(_float(value)):
        return lambda ctx: _float(value)
    return None


def _q(model: Any, context: dict[str, float], m: float) -> float:
    """The reward model: the utility of size m at the fitted moments of the context."""
    choice = model.choose(context)
    return float(model.utility(m, choice.mean, choice.second))


def _interval(values: np.ndarray) -> dict[str, float]:
    mean, se = float(values.mean()), float(values.std(ddof=1) / math.sqrt(len(values)))
    return {"value": mean, "low": mean - 1.96 * se, "high": mean + 1.96 * se}


def _snips(weight: np.ndarray, reward: np.ndarray) -> dict[str, float]:
    total = float(weight.sum())
    if total <= 0:
        return {"value": math.nan, "low": math.nan, "high": math.nan}
    value = float((weight * reward).sum() / total)
    se = math.sqrt(float((weight**2 * (reward - value) ** 2).sum())) / total  # delta method
    return {"value": value, "low": value - 1.96 * se, "high": value + 1.96 * se}


def _object(raw: Any) -> dict[str, Any]:
    try:
        value = json.loads(raw or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _float(raw: Any) -> float:
    try:
        return float(raw)
    except (TypeError, ValueError):
        return math.nan
