"""Turn `trade.closed` entries into experiences, or into rejections with a reason.

Every producer is mapped explicitly (`rl.sources`): which field holds the PnL and on which scale.
A record from no mapped source, from the agent itself, from a test/synthetic lane, with missing or
non-finite numbers, impossible prices, or a PnL that contradicts its own prices (the old daemon's
`PnL=0.00 (-100.00%)`) is rejected, never learned from.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from typing import Any

REQUIRED = ("symbol", "side", "entry_price", "exit_price", "source")
REGIMES = ("trend", "mean_reversion", "chop")
SCALES = {"percent": 1.0, "fraction": 100.0, "bps": 0.01}
TEST_MARKERS = ("test", "synthetic", "demo", "paper", "replay")
AGENT_SOURCE = "qtctl-rl-agent"


@dataclass(frozen=True)
class Experience:
    """One real closed trade as the bandit sees it."""

    trade_id: str
    symbol: str
    features: tuple[float, ...]
    multiplier: float  # the size multiplier that was actually used
    propensity: float  # probability the logging policy chose it (nan: unknown)
    pnl_pct: float
    r_multiple: float = math.nan  # the producer's R_net, when given
    ret: float = math.nan  # side-aware price return, a fraction of the entry price (size-free)
    context: dict[str, float] = field(default_factory=dict)  # entry context the model bins on


class Rejected(ValueError):
    """Why a record cannot become an experience."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class SourceMap:
    """How one producer writes its PnL."""

    pnl_field: str = "pnl_percent"
    scale: str = "percent"


def source_maps(entries: tuple[str, ...]) -> dict[str, SourceMap]:
    """`source=field:scale` entries (`*` matches any source); ValueError names a bad one."""
    out = {}
    for entry in entries:
        name, _, spec = entry.partition("=")
        field_name, _, scale = spec.partition(":")
        if not name or not field_name or scale not in SCALES:
            raise ValueError(f"rl.sources: {entry!r} is not `source=field:percent|fraction|bps`")
        out[name.strip()] = SourceMap(field_name.strip(), scale)
    return out


def experience(
    fields: dict[str, str],
    sources: dict[str, SourceMap],
    context: dict[str, Any] | None = None,
    tolerance_pct: float = 0.05,
    max_abs_pnl_pct: float = 500.0,
    extra: tuple[str, ...] = (),
) -> Experience:
    """Validate one record; raise Rejected with the reason. `context` is the entry context
    (the decision's features, or `quantum:rl:state:<order_id>`): it wins over the record's own."""
    missing = [k for k in REQUIRED if not fields.get(k)]
    if missing:
        raise Rejected("missing-field", ", ".join(missing))
    source = fields["source"]
    lowered = " ".join((source, fields.get("symbol", ""), fields.get("reason", ""))).lower()
    if source == AGENT_SOURCE or fields.get("producer") == AGENT_SOURCE:
        raise Rejected("own-output", source)
    if any(m in lowered for m in TEST_MARKERS) or _truthy(fields.get("test") or ""):
        raise Rejected("test-record", source)
    mapping = sources.get(source) or sources.get("*")
    if mapping is None:
        raise Rejected("unknown-source", source)
    side = fields["side"].upper()
    if side not in ("LONG", "SHORT"):
        raise Rejected("bad-side", fields["side"])
    entry, exit_ = _number(fields, "entry_price"), _number(fields, "exit_price")
    if entry <= 0 or exit_ <= 0:
        raise Rejected("bad-price", f"entry {entry}, exit {exit_}")
    raw_pnl = fields.get(mapping.pnl_field)
    if raw_pnl in (None, ""):
        raise Rejected("missing-field", mapping.pnl_field)
    reported = _number(fields, mapping.pnl_field) * SCALES[mapping.scale]
    leverage = _optional(fields, "leverage", 1.0)
    if leverage <= 0:
        raise Rejected("bad-leverage", str(leverage))
    computed = (1 if side == "LONG" else -1) * (exit_ - entry) / entry * 100
    if not any(
        abs(reported - computed * lev) <= max(tolerance_pct, 0.05 * abs(computed * lev))
        for lev in {1.0, leverage}
    ):
        raise Rejected(
            "pnl-inconsistent",
            f"reported {reported:.4f} % but prices give {computed:.4f} % (leverage {leverage:g})",
        )
    if abs(reported) > max_abs_pnl_pct:
        raise Rejected("implausible-pnl", f"{reported:.2f} %")
    ctx = context or {}
    confidence = _clip(_first(fields, ctx, "confidence", 0.5), 0.0, 1.0)
    volatility = _clip(_first(fields, ctx, "volatility", _first(fields, ctx, "sigma", 0.01)), 0, 1)
    regime = str(fields.get("regime") or ctx.get("regime") or "").lower()
    onehot = tuple(1.0 if regime == r else 0.0 for r in REGIMES)
    features = (
        confidence,
        min(volatility * 20, 1.0),
        min(leverage / 20, 1.0),
        1.0 if side == "LONG" else -1.0,
        *onehot,
        _symbol_hash(fields["symbol"]),
    )
    multiplier = _first(fields, ctx, "size_multiplier", 1.0)
    propensity = _first(fields, ctx, "action_prob", math.nan)
    trade_id = fields.get("order_id") or fields.get("position_id") or _fallback_id(fields)
    r_multiple = _first(fields, ctx, "R_net", math.nan)
    return Experience(
        trade_id,
        fields["symbol"],
        features,
        multiplier,
        propensity,
        computed * leverage,
        r_multiple,
        computed / 100,
        entry_context(fields, ctx, extra),
    )


def entry_context(
    fields: dict[str, str], ctx: dict[str, Any], extra: tuple[str, ...] = ()
) -> dict[str, float]:
    """The numeric entry context: confidence, volatility (or sigma), leverage and `extra`; a
    field that is missing or not a finite number is left out (the model does not guess it)."""
    out = {}
    for name, aliases in (("confidence", ()), ("volatility", ("sigma",)), ("leverage", ())):
        for key in (name, *aliases):
            value = _first(fields, ctx, key, math.nan)
            if math.isfinite(value):
                out[name] = value
                break
    for name in extra:
        value = _first(fields, ctx, name, math.nan)
        if math.isfinite(value):
            out[name] = value
    return out


def _number(fields: dict[str, str], name: str) -> float:
    try:
        value = float(fields[name])
    except (KeyError, ValueError):
        raise Rejected("not-a-number", f"{name}={fields.get(name)!r}") from None
    if not math.isfinite(value):
        raise Rejected("not-finite", f"{name}={fields.get(name)!r}")
    return value


def _optional(fields: dict[str, str], name: str, default: float) -> float:
    return _number(fields, name) if fields.get(name) not in (None, "") else default


def _first(fields: dict[str, str], ctx: dict[str, Any], name: str, default: float) -> float:
    raw = ctx.get(name)
    if raw in (None, ""):
        raw = fields.get(name)
    try:
        value = float(raw)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return default
    return value if math.isfinite(value) else default


def _clip(value: float, low: float, high: float) -> float:
    return min(high, max(low, value))


def _truthy(text: str) -> bool:
    return text.strip().lower() in ("1", "true", "yes")


def _symbol_hash(symbol: str) -> float:
    return int(hashlib.blake2s(symbol.encode(), digest_size=2).hexdigest(), 16) / 65535


def _fallback_id(fields: dict[str, str]) -> str:
    key = json.dumps([fields.get(k) for k in ("symbol", "timestamp", "entry_price", "exit_price")])
    return "h:" + hashlib.blake2s(key.encode(), digest_size=8).hexdigest()


REWARD_SCALES = {"unit": 1.0, "percent": 0.01, "bps": 0.0001}


def parse_reward_scales(entries: tuple[str, ...]) -> dict[str, tuple[str, float]]:
    """`source=field:unit|percent|bps` for rl_rewards producers (`*` matches any)."""
    out = {}
    for text in entries:
        name, _, spec = text.partition("=")
        field_name, _, scale = spec.partition(":")
        if not name or not field_name or scale not in REWARD_SCALES:
            raise ValueError(f"rl.reward_sources: {text!r} is not `source=field:unit|percent|bps`")
        out[name.strip()] = (field_name.strip(), REWARD_SCALES[scale])
    return out


def reward_experience(fields: dict[str, str], scales: dict[str, tuple[str, float]]) -> Experience:
    """An `rl_rewards` entry (symbol, reward, action, state JSON, leverage) as an experience."""
    source = fields.get("source", "")
    if source == AGENT_SOURCE or fields.get("producer") == AGENT_SOURCE:
        raise Rejected("own-output", source)
    lowered = " ".join((source, fields.get("symbol", ""))).lower()
    if any(m in lowered for m in TEST_MARKERS):
        raise Rejected("test-record", source or fields.get("symbol", ""))
    mapping = scales.get(source) or scales.get("*")
    if mapping is None:
        raise Rejected("unknown-source", source)
    field_name, factor = mapping
    if not fields.get("symbol"):
        raise Rejected("missing-field", "symbol")
    if fields.get(field_name) in (None, ""):
        raise Rejected("missing-field", field_name)
    reward = _number(fields, field_name) * factor
    if not -1 <= reward <= 1:
        raise Rejected("reward-out-of-range", f"{reward:g} after scaling (check rl.reward_sources)")
    try:
        ctx = json.loads(fields.get("state") or "{}")
    except ValueError:
        raise Rejected("bad-state", "state is not JSON") from None
    if not isinstance(ctx, dict):
        raise Rejected("bad-state", "state is not a JSON object")
    leverage = _optional(fields, "leverage", 1.0)
    confidence = _clip(_first(fields, ctx, "confidence", 0.5), 0.0, 1.0)
    volatility = _clip(_first(fields, ctx, "volatility", 0.01), 0, 1)
    regime = str(ctx.get("regime") or "").lower()
    side = str(ctx.get("side") or fields.get("side") or "LONG").upper()
    features = (
        confidence,
        min(volatility * 20, 1.0),
        min(max(leverage, 0) / 20, 1.0),
        1.0 if side == "LONG" else -1.0,
        *(1.0 if regime == r else 0.0 for r in REGIMES),
        _symbol_hash(fields["symbol"]),
    )
    multiplier = _first(fields, ctx, "action", 1.0)
    trade_id = str(ctx.get("order_id") or fields.get("order_id") or "") or _fallback_id(fields)
    # the reward is the return of the position the action sized: per unit of size, it is the
    # trade's return
    ret = reward / multiplier if multiplier > 0 else reward
    return Experience(
        "r:" + trade_id,
        fields["symbol"],
        features,
        multiplier,
        _first(fields, ctx, "action_prob", math.nan),
        reward * 100,
        ret=ret,
        context=entry_context(fields, ctx),
    )
