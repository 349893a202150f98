"""The `[rl]` section: what the RL sizing agent reads, how it decides and learns, what it writes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


def _choices(*values: str) -> dict[str, Any]:
    return {"choices": values}


@dataclass(frozen=True)
class RlSettings:
    """`qtctl run rl-agent`: what it reads, how it learns, where it keeps its model."""

    trade_stream: str = "trade.closed"  # under streams.prefix
    reward_stream: str = "rl_rewards"  # under streams.prefix
    reward_sources: tuple[str, ...] = ("*=reward:unit",)  # source=field:unit|percent|bps
    group: str = "qtctl:rl-agent"
    consumer: str = ""  # empty: the host name (stable across restarts)
    start_id: str = field(default="$", metadata=_choices("$", "0"))
    batch: int = field(default=256, metadata={"min": 1, "max": 10_000})
    block_ms: int = field(default=500, metadata={"min": 1, "max": 5000})
    claim_idle_sec: float = field(default=60.0, metadata={"min": 1})
    sources: tuple[str, ...] = ("*=pnl_percent:percent",)  # source=field:scale, * = any
    pnl_tolerance_pct: float = field(default=0.05, metadata={"min": 0})
    max_abs_pnl_pct: float = field(default=500.0, metadata={"min": 1})
    multipliers: tuple[str, ...] = ("0.25", "0.5", "0.75", "1.0", "1.25", "1.5")
    min_multiplier: float = field(default=0.25, metadata={"min": 0.01})
    max_multiplier: float = field(default=1.5, metadata={"min": 0.01})
    risk_aversion: float = field(default=10.0, metadata={"min": 0.01})  # gamma in the utility
    cost_bps: float = field(default=10.0, metadata={"min": 0})  # round trip, per unit of size
    bins: tuple[str, ...] = (  # field:edges; the model's cells
        "confidence:0.2,0.4,0.6,0.8",
        "volatility:0.005,0.01,0.015,0.02,0.03",
    )
    scale_field: str = "volatility"  # returns are modelled in units of it when they scale so
    linear: tuple[str, ...] = ("confidence",)  # binned fields with a linear term (t-tested)
    caution: float = field(default=0.25, metadata={"min": 0, "max": 10})  # se charged per unit
    extra_features: tuple[str, ...] = ()  # more numeric request fields kept with a decision
    min_trades: int = field(default=20, metadata={"min": 1})  # evidence before leaving 1.0
    explore: float = field(default=0.0, metadata={"min": 0, "max": 1})  # uniform draws
    seed: int = 0
    model_dir: str = "/var/lib/qtctl-rl-agent"
    checkpoint_every: int = field(default=20, metadata={"min": 1})  # updates
    checkpoint_every_sec: float = field(default=30.0, metadata={"min": 1})
    keep_checkpoints: int = field(default=3, metadata={"min": 1})
    stats_key: str = "quantum:rl:agent:stats"
    stats_stream: str = "rl.stats"
    stats_every_sec: float = field(default=60.0, metadata={"min": 1})
    request_stream: str = "rl.sizing.request"  # under streams.prefix
    decision_prefix: str = "quantum:rl:decision:"
    decision_log: str = "rl.decisions"  # under streams.prefix: every decision and its probability
    decision_ttl_sec: int = field(default=7 * 86400, metadata={"min": 1})  # kept to join the close
    decision_valid_sec: float = field(default=60.0, metadata={"min": 0.1})  # `expires` after this
    decision_field: str = "decision_id"  # the field of trade.closed that names the decision
    state_prefix: str = "quantum:rl:state:"  # the fleet's entry context, by entry order id
    recommendation_prefix: str = "quantum:rl:recommendation:"
    dead_letter: str = "trade.closed:rl-dead-letter"
    seen_key: str = "quantum:rl:agent:seen"  # trade ids already learned (duplicates rejected)
