"""The kernel's memory of each position: its best price, its ratchet (the last stop), its target,
its sequence number, when it was first seen, when its price last changed, and a latched exit.

One field per symbol in the hash `risk.state_key`, apart from the proposal hash, so a lost
proposal and a restart both keep it. It belongs to the position's identity (`position_id`, else
side and entry price): a qty change (a partial close) is the same position, another identity is
a new one and starts afresh. The daemon and `qtctl risk replay` both go through `prior` and
`advance`, so a replay runs the very rules the daemon does.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from qtctl.daemons.risk_kernel.kernel import Inputs, Proposals, exit_reason

VERSION = "s1"
PARTS = 12  # the identity goes last: it is the fleet's text and may hold any character


class Prior(NamedTuple):
    """What the kernel remembers of one position."""

    peak: float
    sl: float
    tp: float
    seq: int
    opened_at: float
    price: float
    price_at: float
    exit_reason: str
    exit_price: str
    exit_at: str

    @property
    def latched(self) -> bool:
        """An exit-now was proposed: it stays until the position is gone."""
        return bool(self.exit_reason)


def identity(position_id: str | None, side: str | None, entry: str | None) -> str:
    """`position_id`, else side and entry price (the symbol is the field's name)."""
    return f"id:{position_id}" if position_id else f"{(side or '').upper()}@{entry or ''}"


def prior(raw: str | None, ident: str) -> Prior | None:
    """The memory in `raw` when it belongs to this identity; None for a new position."""
    if not raw:
        return None
    parts = raw.split("|", PARTS - 1)
    if len(parts) != PARTS or parts[0] != VERSION or parts[-1] != ident:
        return None
    try:
        return Prior(
            float(parts[1]),
            float(parts[2]),
            float(parts[3]),
            int(parts[4]),
            float(parts[5]),
            float(parts[6]),
            float(parts[7]),
            parts[8],
            parts[9],
            parts[10],
        )
    except ValueError:
        return None  # never a crash on a hand-edited field: the position starts afresh


def advance(
    x: Inputs,
    out: Proposals,
    priors: Sequence[Prior | None],
    idents: Sequence[str],
    rows: Sequence[int],
    now: float,
) -> dict[int, str]:
    """The memory after publishing these rows' proposals: the best price, the stop (kept as it
    was for an exit or a row not valid), the target, and the exit latched with its first
    reason, price and time."""
    best = np.where(x.side > 0, np.fmax(x.peak, x.price), np.fmin(x.peak, x.price))
    live = out.valid & ~out.exit_now
    bits = out.reasons.tolist()
    memory = {}
    for i in rows:
        p, ident = priors[i], idents[i]
        old = p or _FRESH
        sl = float(out.stop_loss[i]) if live[i] else old.sl
        tp = float(out.take_profit[i]) if live[i] else old.tp
        price = float(x.price[i])
        price_at = old.price_at if p is not None and price == old.price else now
        opened = old.opened_at if p is not None else now
        reason, at, exit_price = old.exit_reason, old.exit_at, old.exit_price
        if not reason and out.exit_now[i]:
            reason, at, exit_price = exit_reason(bits[i]), f"{now:.3f}", f"{price:.10g}"
        memory[i] = (
            f"{VERSION}|{float(best[i])!r}|{sl!r}|{tp!r}|{old.seq + 1}|{opened!r}|{price!r}|"
            f"{price_at!r}|{reason}|{exit_price}|{at}|{ident}"
        )
    return memory


_FRESH = Prior(math.nan, math.nan, math.nan, 0, math.nan, math.nan, math.nan, "", "", "")
