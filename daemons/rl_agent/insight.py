"""`qtctl rl stats` and `qtctl rl evaluate`: what the agent learned, read from Redis and disk."""

from __future__ import annotations

import json
import math
from pathlib import Path
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


def evaluate(client: Any, config: Any, count: int) -> dict[str, Any]:
    """Offline evaluation of the latest checkpoint on logged trades.

    IPS (inverse propensity scoring) needs the logging policy's probability of the multiplier
    used (`action_prob` on the record or its entry context); the direct-method estimate uses the
    network's own reward predictions and is reported beside it.
    """
    from qtctl.daemons.rl_agent import checkpoint
    from qtctl.daemons.rl_agent.daemon import parse_sources
    from qtctl.daemons.rl_agent.policy import Policy
    from qtctl.daemons.rl_agent.records import Rejected, experience

    s = config.rl
    state, path = checkpoint.load_latest(Path(s.model_dir))
    if state is None:
        return {"error": f"no checkpoint in {s.model_dir}: the agent has not learned yet"}
    policy = Policy(tuple(float(a) for a in state["policy"]["actions"]))
    policy.load(state["policy"])
    policy.min_updates = 0  # evaluate what it would choose, not the safety fallback
    sources = parse_sources(s.sources)
    entries = client.xrevrange(config.streams.prefix + s.trade_stream, count=count)
    exps = []
    for _, fields in entries:
        try:
            exps.append(experience(fields, sources))
        except Rejected:
            continue
    if not exps:
        return {"checkpoint": str(path), "records": len(entries), "valid": 0}
    x = np.asarray([e.features for e in exps])
    used = np.asarray([e.multiplier for e in exps])
    reward = np.clip(np.asarray([e.pnl_pct for e in exps]) / 100, -1, 1)
    chosen, _ = policy.recommend(x)
    q = policy.scores(x)
    direct = float(q[np.arange(len(x)), policy.action_index(chosen)].mean())
    prop = np.asarray([e.propensity for e in exps])
    known = np.isfinite(prop) & (prop > 0)
    out: dict[str, Any] = {
        "checkpoint": str(path),
        "model_version": int(state["policy"]["updates"]),
        "records": len(entries),
        "valid": len(exps),
        "logged_policy_value": float(reward.mean()),
        "direct_method_value": direct,
        "with_propensity": int(known.sum()),
    }
    if known.any():
        match = policy.action_index(chosen[known]) == policy.action_index(used[known])
        weights = match / prop[known]
        ips = weights * reward[known]
        out["ips_value"] = float(ips.mean())
        out["ips_stderr"] = float(ips.std() / math.sqrt(len(ips)))
    return out


def _float(raw: Any) -> float:
    try:
        return float(raw)
    except (TypeError, ValueError):
        return math.nan
