"""Read every open position, its market state and the kernel's own state in one pipeline."""

from __future__ import annotations

import hashlib
import math
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np

from qtctl.daemons.risk_kernel.kernel import Inputs

REGIME = ("p_trend", "p_mr", "p_chop")
STAMP_FIELDS = ("timestamp", "updated_at", "computed_at_utc", "ts_utc")
POSITION_FIELDS = (
    "side",
    "entry_price",
    "current_price",
    "peak_price",
    "trough_price",
    "qty",
    "position_id",
    "liquidation_price",
    "age_sec",
)
MARKET_FIELDS = ("sigma", "ts", *REGIME, *STAMP_FIELDS)
# The kernel's own state rides in the proposal hash: one write per position, and a restart
# reads back the stop it must never loosen.
STATE_FIELDS = ("kernel_fingerprint", "seq", "kernel_peak", "kernel_sl", "kernel_tp")
READ_ALL = """
local np, nm = tonumber(ARGV[4]), tonumber(ARGV[5])
local ns = 5
local pos, mkt, st = {}, {}, {}
for i = 6, 5 + np do table.insert(pos, ARGV[i]) end
for i = 6 + np, 5 + np + nm do table.insert(mkt, ARGV[i]) end
for i = 6 + np + nm, 5 + np + nm + ns do table.insert(st, ARGV[i]) end
local out = {}
for i = 6 + np + nm + ns, #ARGV do
  local s = ARGV[i]
  table.insert(out, redis.call('HMGET', ARGV[1] .. s, unpack(pos)))
  table.insert(out, redis.call('HMGET', ARGV[2] .. s, unpack(mkt)))
  table.insert(out, redis.call('HMGET', ARGV[3] .. s, unpack(st)))
end
return out
"""


@dataclass
class Batch:
    """Positions ready for the kernel, and those held back with the reason."""

    symbols: list[str] = field(default_factory=list)
    inputs: Inputs | None = None
    positions: list[dict[str, str]] = field(default_factory=list)
    markets: list[dict[str, str]] = field(default_factory=list)
    states: list[dict[str, str]] = field(default_factory=list)
    fingerprints: list[str] = field(default_factory=list)
    digests: list[str] = field(default_factory=list)
    held: dict[str, str] = field(default_factory=dict)  # symbol -> why no new proposal


def read(client: Any, settings: Any, symbols: list[str], now: float) -> Batch:
    """Pipelined HGETALLs for every symbol, parsed into kernel inputs."""
    # One call: the server HMGETs the fields the kernel reads for every symbol.
    replies = client.eval(
        READ_ALL,
        0,
        settings.position_prefix,
        settings.market_prefix,
        settings.proposal_prefix,
        len(POSITION_FIELDS),
        len(MARKET_FIELDS),
        *POSITION_FIELDS,
        *MARKET_FIELDS,
        *STATE_FIELDS,
        *symbols,
    )
    batch = Batch()
    rows: list[list[float]] = []
    for i, symbol in enumerate(symbols):
        position = _fields(POSITION_FIELDS, replies[3 * i])
        market = _fields(MARKET_FIELDS, replies[3 * i + 1])
        state = _fields(STATE_FIELDS, replies[3 * i + 2])
        if not position:
            continue  # closed between SCAN and read
        problem = _problem(position, market, settings, now)
        if problem:
            batch.held[symbol] = problem
            continue
        fingerprint = _fingerprint(position)
        if state.get("kernel_fingerprint") != fingerprint:
            state = {"seq": state.get("seq", "0")}  # a new position (or size/entry change)
        row = _row(position, market, state)
        batch.symbols.append(symbol)
        batch.positions.append(position)
        batch.markets.append(market)
        batch.states.append(state)
        batch.fingerprints.append(fingerprint)
        batch.digests.append(_digest(row))
        rows.append(row)
    if rows:
        a = np.array(rows, dtype=np.float64)
        batch.inputs = Inputs(
            side=a[:, 0],
            price=a[:, 1],
            entry=a[:, 2],
            peak=a[:, 3],
            sigma=a[:, 4],
            trend=a[:, 5],
            weights=a[:, 6:9],
            prev_sl=a[:, 9],
            prev_tp=a[:, 10],
            liquidation=a[:, 11],
        )
    return batch


def _problem(position: dict[str, str], market: dict[str, str], settings: Any, now: float) -> str:
    if position.get("side", "").upper() not in ("LONG", "SHORT"):
        return f"position side {position.get('side', 'missing')!r} is not LONG or SHORT"
    if not market:
        return "no market state"
    missing = [k for k in (*REGIME, "sigma") if k not in market]
    if missing:  # never a silent 0: the old publisher ran for weeks with p_trend = 0
        return f"market state lacks {', '.join(missing)}"
    stamp = _stamp(market)
    if stamp and now - stamp > settings.market_max_age_sec:
        return f"market state is {now - stamp:.0f} s old (limit {settings.market_max_age_sec:g})"
    return ""


def _row(position: dict[str, str], market: dict[str, str], state: dict[str, str]) -> list[float]:
    side = 1.0 if position["side"].upper() == "LONG" else -1.0
    price = _num(position.get("current_price"))
    peak_key = "peak_price" if side > 0 else "trough_price"
    peak = _num(position.get(peak_key), price)
    held_peak = _num(state.get("kernel_peak"))
    if math.isfinite(held_peak):  # the kernel's own best price survives restarts
        peak = max(peak, held_peak) if side > 0 else min(peak, held_peak)
    return [
        side,
        price,
        _num(position.get("entry_price")),
        peak,
        _num(market.get("sigma")),
        _num(market.get("ts"), 0.0),
        *(_num(market.get(k)) for k in REGIME),
        _num(state.get("kernel_sl")),
        _num(state.get("kernel_tp")),
        _num(position.get("liquidation_price")),
    ]


def _fingerprint(position: dict[str, str]) -> str:
    parts = [position.get(k, "") for k in ("side", "entry_price", "qty", "position_id")]
    return "|".join(parts)


def _digest(row: list[float]) -> str:
    return hashlib.blake2s(repr(row).encode(), digest_size=8).hexdigest()


def _num(raw: str | None, default: float = math.nan) -> float:
    if raw is None or raw == "":
        return default
    try:
        return float(raw)
    except ValueError:
        return math.nan  # present but garbage: an input error, not a default


def _stamp(market: dict[str, str]) -> float:
    for name in STAMP_FIELDS:
        raw = market.get(name)
        if not raw:
            continue
        try:
            value = float(raw)
            return value / 1000 if value > 1e11 else value
        except ValueError:
            pass
        try:
            return datetime.fromisoformat(raw.replace("Z", "+00:00")).timestamp()
        except ValueError:
            return 0.0
    return 0.0


def _fields(names: tuple[str, ...], values: list[Any]) -> dict[str, str]:
    """Lua turns a missing field (nil) into false; keep only the fields that exist."""
    return {
        n: (v.decode() if isinstance(v, bytes) else str(v))
        for n, v in zip(names, values, strict=True)
        if v is not None and v is not False
    }


def scan_symbols(client: Any, prefix: str) -> list[str]:
    """Symbols with a position hash (SCAN, never KEYS)."""
    keys = client.scan_iter(match=f"{prefix}*", count=1000, _type="hash")
    return sorted((k.decode() if isinstance(k, bytes) else k)[len(prefix) :] for k in keys)


def now() -> float:
    """Wall clock (proposals carry Unix timestamps)."""
    return time.time()
