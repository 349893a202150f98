"""Read every open position, its market state and the kernel's own state in one pipeline."""

from __future__ import annotations

import hashlib
import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from operator import itemgetter
from typing import Any

import numpy as np
from numpy.typing import NDArray

from qtctl.adapters import resp
from qtctl.adapters.resp import Template
from qtctl.daemons.risk_kernel.kernel import Inputs
from qtctl.escaping import shown, undecodable

log = logging.getLogger("qtctl.risk_kernel")
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
P = {name: i for i, name in enumerate(POSITION_FIELDS)}
M = {name: i for i, name in enumerate(MARKET_FIELDS)}
S = {name: i for i, name in enumerate(STATE_FIELDS)}
Reply = list[str | None]
SIDES = frozenset(("LONG", "SHORT"))
REQUIRED = (*REGIME, "sigma")
_required = itemgetter(*(M[k] for k in REQUIRED))
_stamps = itemgetter(*(M[k] for k in STAMP_FIELDS))


@dataclass
class Batch:
    """Positions ready for the kernel (columns, one entry per row), and those held back."""

    symbols: list[str] = field(default_factory=list)
    inputs: Inputs | None = None
    entry_text: list[str] = field(default_factory=list)  # passed through as the fleet wrote it
    price_text: list[str] = field(default_factory=list)
    age_text: list[str] = field(default_factory=list)
    sigma_text: list[str] = field(default_factory=list)
    seq: list[int] = field(default_factory=list)  # the last published sequence number
    fingerprints: list[str] = field(default_factory=list)
    digests: list[str] = field(default_factory=list)
    held: dict[str, str] = field(default_factory=dict)  # symbol -> why no new proposal


def read(client: Any, settings: Any, symbols: list[str], now: float) -> Batch:
    """Three HMGETs per symbol in one pipeline (the fields the kernel reads), parsed by column.

    Plain pipelined HMGETs cost Redis about 1 us each; the same reads in one Lua script cost it
    12 ms for 1,000 positions, blocking every other client meanwhile."""
    prefixes = (settings.position_prefix, settings.market_prefix, settings.proposal_prefix)
    replies = resp.execute(client, _commands(prefixes, tuple(symbols)))
    n = len(symbols)
    batch = Batch()
    rows: list[tuple[Reply, Reply, Reply]] = []
    fingerprint_of, nothing = itemgetter(*(P[k] for k in FINGERPRINT)), len(POSITION_FIELDS)
    for i, symbol in enumerate(symbols):
        position, market, state = replies[i], replies[n + i], replies[2 * n + i]
        if position.__class__ is not list or position.count(None) == nothing:
            continue  # closed (or retyped) between SCAN and read
        problem = _wrong_type(market, state, settings) or _problem(position, market, settings, now)
        if problem:
            batch.held[symbol] = problem
            continue
        fingerprint = "|".join([v or "" for v in fingerprint_of(position)])
        if state[S["kernel_fingerprint"]] != fingerprint:  # a new position, or a size/entry change
            state = [None, state[S["seq"]], None, None, None]
        batch.symbols.append(symbol)
        batch.fingerprints.append(fingerprint)
        rows.append((position, market, state))
    if rows:
        _columns(batch, rows)
    return batch


FINGERPRINT = ("side", "entry_price", "qty", "position_id")


@lru_cache(maxsize=4)
def _commands(prefixes: tuple[str, str, str], symbols: tuple[str, ...]) -> list[str]:
    """The cycle's HMGETs; the same until the next SCAN finds other symbols."""
    commands: list[str] = []
    for prefix, names in zip(prefixes, (POSITION_FIELDS, MARKET_FIELDS, STATE_FIELDS), strict=True):
        commands += Template("HMGET", None, *names).rows([prefix + s for s in symbols])
    return commands


def _columns(batch: Batch, rows: list[tuple[Reply, Reply, Reply]]) -> None:
    positions, markets, states = zip(*rows, strict=True)
    # Field by field: one transposition each instead of a list comprehension per field.
    by_position, by_market, by_state = (
        list(zip(*r, strict=True)) for r in (positions, markets, states)
    )

    long = np.array([(p[P["side"]] or "").upper() == "LONG" for p in positions])
    price_text = by_position[P["current_price"]]
    price = _floats(price_text)
    peak_text = [
        p[P["peak_price"] if is_long else P["trough_price"]]
        for p, is_long in zip(positions, long.tolist(), strict=True)
    ]
    peak = np.where(_missing(peak_text), price, _floats(peak_text))
    held_peak = _floats(by_state[S["kernel_peak"]])
    best = np.where(long, np.maximum(peak, held_peak), np.minimum(peak, held_peak))
    peak = np.where(np.isfinite(held_peak), best, peak)  # the kernel's best survives restarts
    trend_text = by_market[M["ts"]]
    a = np.column_stack(
        [
            np.where(long, 1.0, -1.0),
            price,
            _floats(by_position[P["entry_price"]]),
            peak,
            _floats(by_market[M["sigma"]]),
            np.where(_missing(trend_text), 0.0, _floats(trend_text)),
            *(_floats(by_market[M[k]]) for k in REGIME),
            _floats(by_state[S["kernel_sl"]]),
            _floats(by_state[S["kernel_tp"]]),
            _floats(by_position[P["liquidation_price"]]),
        ]
    )
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
    batch.entry_text = [v or "" for v in by_position[P["entry_price"]]]
    batch.price_text = [v or "" for v in price_text]
    batch.age_text = [v or "" for v in by_position[P["age_sec"]]]
    batch.sigma_text = [v or "" for v in by_market[M["sigma"]]]
    batch.seq = [_seq(v) for v in by_state[S["seq"]]]
    width = a.shape[1] * a.itemsize
    raw = np.ascontiguousarray(a).tobytes()
    batch.digests = [
        hashlib.blake2s(raw[o : o + width], digest_size=8).hexdigest()
        for o in range(0, len(raw), width)
    ]


def _floats(values: Sequence[str | None]) -> NDArray[np.float64]:
    """A column of numbers; missing or garbage is NaN (an input error, never a default 0)."""
    if None in values:  # optional fields: absent in most rows, or in all
        if values.count(None) == len(values):
            return np.full(len(values), np.nan)
        values = ["nan" if v is None else v for v in values]
    try:
        return np.fromiter(map(float, values), np.float64, len(values))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return np.array([_num(v) for v in values], dtype=np.float64)


def _missing(values: Sequence[str | None]) -> NDArray[np.bool_]:
    return np.array([v is None or v == "" for v in values], dtype=bool)


def _seq(raw: str | None) -> int:
    try:
        return int(raw or 0)
    except ValueError:
        return 0


def _wrong_type(market: Any, state: Any, settings: Any) -> str:
    if not isinstance(market, list):
        return f"market state {settings.market_prefix}SYMBOL is not a hash ({market})"
    if not isinstance(state, list):
        return f"proposal key {settings.proposal_prefix}SYMBOL is not a hash ({state})"
    return ""


def _problem(position: Reply, market: Reply, settings: Any, now: float) -> str:
    side = position[P["side"]]
    if side not in SIDES and (side or "").upper() not in SIDES:
        return f"position side {'missing' if side is None else side!r} is not LONG or SHORT"
    if market.count(None) == len(MARKET_FIELDS):
        return "no market state"
    if None in _required(market):  # never a silent 0 (the old publisher's p_trend for weeks)
        missing = [k for k in REQUIRED if market[M[k]] is None]
        return f"market state lacks {', '.join(missing)}"
    stamp = _stamp(market) if any(_stamps(market)) else 0.0
    if stamp and now - stamp > settings.market_max_age_sec:
        return f"market state is {now - stamp:.0f} s old (limit {settings.market_max_age_sec:g})"
    return ""


def _num(raw: str | None, default: float = math.nan) -> float:
    if raw is None or raw == "":
        return default
    try:
        return float(raw)
    except ValueError:
        return math.nan  # present but garbage: an input error, not a default


def _stamp(market: Reply) -> float:
    for name in STAMP_FIELDS:
        raw = market[M[name]]
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


def scan_symbols(client: Any, prefix: str) -> list[str]:
    """Symbols with a position hash (SCAN, never KEYS), names read as bytes: a key whose name
    is not UTF-8 cannot be named in a command, so it is skipped and logged (once), never a
    crash that stops the stops of every other position."""
    keys = client.scan_iter(match=f"{prefix}*", count=1000, _type="hash", NEVER_DECODE=True)
    symbols = []
    for key in keys:
        name = key.decode("utf-8", "surrogateescape") if isinstance(key, bytes) else key
        if undecodable(name):
            _skip_once(shown(name))
            continue
        symbols.append(name[len(prefix) :])
    return sorted(symbols)


@lru_cache(maxsize=1024)
def _skip_once(name: str) -> None:
    """One log line per such key, not one every rescan."""
    log.error("position key %s skipped: its name is not valid UTF-8", name)


def now() -> float:
    """Wall clock (proposals carry Unix timestamps)."""
    return time.time()
