"""`qtctl risk replay`: the daemon's own rules (`kernel.compute`, `state.prior`/`state.advance`)
over recorded price paths, so two parameter sets can be compared on the same data.

The file is CSV with a header: `timestamp` (Unix seconds or ISO-8601), `symbol`, `price`, and
optionally `open` (LONG or SHORT: a position opens at this price when the symbol has none),
`leverage`, and the market state `sigma`, `p_trend`, `p_mr`, `p_chop`, `trend` (the contract's
`ts`), each kept until a later row changes it. Rows with the same timestamp are one cycle. A
position closes at the price of the cycle whose proposal is exit-now.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from itertools import groupby
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from qtctl.daemons.risk_kernel import state
from qtctl.daemons.risk_kernel.kernel import BIT, Inputs, Params, compute
from qtctl.errors import UsageError

MARKET = ("sigma", "p_trend", "p_mr", "p_chop", "trend")
DEFAULT_MARKET = (0.01, 1 / 3, 1 / 3, 1 / 3, 0.0)
EXITS = ("stop", "trail", "target", "liquidation-near", "open")


@dataclass(frozen=True)
class Tick:
    """One row of the file."""

    at: float
    symbol: str
    price: float
    open: str
    leverage: float
    market: dict[str, float]


@dataclass
class Trade:
    """An open position and what the kernel remembers of it."""

    symbol: str
    side: float
    entry: float
    opened: float
    leverage: float
    memory: str = ""
    initial: float = math.nan
    worst: float = 0.0  # the adverse excursion so far, a fraction of the entry (MAE)
    best: float = 0.0  # the favourable one (MFE)


@dataclass(frozen=True)
class Closed:
    """A finished trade: how it ended and what it made, in R (its initial risk)."""

    symbol: str
    reason: str
    r: float
    mae: float
    mfe: float
    seconds: float


@dataclass
class _Book:
    open: dict[str, Trade] = field(default_factory=dict)
    market: dict[str, tuple[float, ...]] = field(default_factory=dict)
    last: dict[str, tuple[float, float]] = field(default_factory=dict)  # symbol -> (at, price)
    closed: list[Closed] = field(default_factory=list)


def read_csv(path: Path) -> list[Tick]:
    """The file's rows in time order; a bad row is a usage error naming its line."""
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read {path}: {exc}") from None
    return ticks_of(rows, first=2)


def ticks_of(rows: Iterable[dict[str, Any]], first: int = 1) -> list[Tick]:
    """Rows (a CSV's, a stream's entries) as ticks in time order; `first` numbers the rows."""
    ticks = [_tick(row, line) for line, row in enumerate(rows, start=first)]
    return sorted(ticks, key=lambda t: t.at)


def _tick(row: dict[str, Any], line: int) -> Tick:
    try:
        price = float(row["price"])
        at = _time(row["timestamp"])
        symbol = row["symbol"].strip()
        side = (row.get("open") or "").strip().upper()
        leverage = float(row.get("leverage") or "nan")
        market = {k: float(row[k]) for k in MARKET if (row.get(k) or "").strip()}
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        why = f"needs timestamp, symbol and a number price ({exc})"
        raise UsageError(f"row {line}: {why}") from None
    if not symbol or not price > 0 or side not in ("", "LONG", "SHORT"):
        why = "needs a symbol, a price > 0, and open LONG, SHORT or empty"
        raise UsageError(f"row {line}: {why}")
    return Tick(at, symbol, price, side, leverage, market)


def _time(raw: str) -> float:
    try:
        return float(raw)
    except ValueError:
        return datetime.fromisoformat(raw.strip().replace("Z", "+00:00")).timestamp()


def replay(ticks: Iterable[Tick], params: Params) -> list[Closed]:
    """Every trade the file opens, run through the kernel cycle by cycle; still open at the end
    of the file is reason `open`, marked at its last price."""
    book = _Book()
    for at, cycle in groupby(ticks, key=lambda t: t.at):
        for tick in cycle:
            _apply(book, tick)
        symbols = [s for s in book.open if book.last[s][0] == at]
        if symbols:
            _cycle(book, symbols, at, params)
    for trade in list(book.open.values()):
        at, price = book.last[trade.symbol]
        book.closed.append(_close(trade, "open", price, at))
    return book.closed


def _apply(book: _Book, tick: Tick) -> None:
    previous = book.market.get(tick.symbol, DEFAULT_MARKET)
    book.market[tick.symbol] = tuple(
        tick.market.get(k, v) for k, v in zip(MARKET, previous, strict=True)
    )
    book.last[tick.symbol] = (tick.at, tick.price)
    if tick.open and tick.symbol not in book.open:
        side = 1.0 if tick.open == "LONG" else -1.0
        book.open[tick.symbol] = Trade(tick.symbol, side, tick.price, tick.at, tick.leverage)


def _cycle(book: _Book, symbols: list[str], at: float, params: Params) -> None:
    """One kernel cycle over the positions priced at this time, exactly as the daemon runs it."""
    trades = [book.open[s] for s in symbols]
    idents = [
        state.identity(None, "LONG" if t.side > 0 else "SHORT", repr(t.entry)) for t in trades
    ]
    priors = [state.prior(t.memory, ident) for t, ident in zip(trades, idents, strict=True)]
    x = _inputs(book, trades, priors, at)
    out = compute(x, params)
    memory = state.advance(x, out, priors, idents, range(len(trades)), at)
    for i, trade in enumerate(trades):
        trade.memory = memory[i]
        price = float(x.price[i])
        if math.isnan(trade.initial):
            trade.initial = float(out.initial_stop[i])
        excursion = trade.side * (price - trade.entry) / trade.entry
        trade.worst, trade.best = min(trade.worst, excursion), max(trade.best, excursion)
        if out.exit_now[i]:
            book.closed.append(_close(trade, _reason(int(out.reasons[i])), price, at))
            del book.open[trade.symbol]


def _inputs(
    book: _Book, trades: list[Trade], priors: list[state.Prior | None], at: float
) -> Inputs:
    nan = math.nan
    market = np.array([book.market[t.symbol] for t in trades], dtype=np.float64)
    price = col(book.last[t.symbol][1] for t in trades)
    held_peak = col(nan if p is None else p.peak for p in priors)
    side = col(t.side for t in trades)
    peak = np.where(side > 0, np.fmax(price, held_peak), np.fmin(price, held_peak))
    return Inputs(
        side=side,
        price=price,
        entry=col(t.entry for t in trades),
        peak=peak,
        sigma=market[:, 0],
        trend=market[:, 4],
        weights=market[:, 1:4],
        prev_sl=col(nan if p is None else p.sl for p in priors),
        prev_tp=col(nan if p is None else p.tp for p in priors),
        liquidation=np.full(len(trades), nan),
        leverage=col(t.leverage for t in trades),
        age=col(at - t.opened for t in trades),
        latched=np.array([p is not None and p.latched for p in priors], dtype=bool),
    )


def col(values: Iterable[float]) -> NDArray[np.float64]:
    """A float column."""
    return np.array(list(values), dtype=np.float64)


def _reason(bits: int) -> str:
    if bits & BIT["exit-tp-reached"]:
        return "target"
    if bits & BIT["exit-liquidation-near"]:
        return "liquidation-near"
    return "trail" if bits & BIT["stop-trailed"] else "stop"


def _close(trade: Trade, reason: str, price: float, at: float) -> Closed:
    risk = trade.side * (trade.entry - trade.initial)
    pnl = trade.side * (price - trade.entry)
    r = pnl / risk if risk > 0 else math.nan
    return Closed(trade.symbol, reason, r, trade.worst, trade.best, at - trade.opened)


def summary(closed: list[Closed]) -> dict[str, Any]:
    """Per symbol and in total: exits by reason, average and worst R, MAE/MFE (percent of the
    entry, averaged), and the average time in trade."""
    symbols = sorted({c.symbol for c in closed})
    per = {s: _stats([c for c in closed if c.symbol == s]) for s in symbols}
    return {"symbols": per, "total": _stats(closed)}


def _stats(trades: list[Closed]) -> dict[str, Any]:
    rs = [c.r for c in trades if math.isfinite(c.r)]
    return {
        "trades": len(trades),
        "exits": {reason: sum(c.reason == reason for c in trades) for reason in EXITS},
        "avg_r": _mean(rs),
        "worst_r": min(rs) if rs else math.nan,
        "mae_pct": _mean([100 * c.mae for c in trades]),
        "mfe_pct": _mean([100 * c.mfe for c in trades]),
        "avg_sec": _mean([c.seconds for c in trades]),
    }


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else math.nan


def rows(doc: dict[str, Any]) -> Iterator[list[str]]:
    """The summary as table rows: symbol, trades, each exit reason, R, MAE, MFE, time."""
    for name, s in (*doc["symbols"].items(), ("total", doc["total"])):
        yield [
            name,
            str(s["trades"]),
            *(str(s["exits"][reason]) for reason in EXITS),
            f"{s['avg_r']:+.2f}",
            f"{s['worst_r']:+.2f}",
            f"{s['mae_pct']:.2f}",
            f"{s['mfe_pct']:.2f}",
            f"{s['avg_sec']:.0f}",
        ]


COLUMNS = (
    *("symbol", "trades", "stop", "trail", "target", "liq-near", "open"),
    *("avg R", "worst R", "MAE %", "MFE %", "avg s"),
)
