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

VERSION = "s1"  # floats in hex (float.hex): exact
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
    """`position_id` (with its side: a flipped position is another one), else side and entry
    price (the symbol is the field's name)."""
    side = (side or "").upper()
    return f"id:{position_id}|{side}" if position_id else f"{side}@{entry or ''}"


RECOVER_FIELDS = (
    *("position_identity", "trading_state", "stop_loss", "take_profit", "seq"),
    *("exit_reason", "exit_price", "exit_at"),
)


def recovered(proposal: Sequence[str | None], ident: str, now: float) -> Prior | None:
    """The memory read back from the position's own proposal (RECOVER_FIELDS), when the state
    hash lost it: its stop stays a floor and its exit stays latched. None if it is another
    position's or holds neither."""
    who, trading, sl, tp, seq, reason, exit_price, exit_at = proposal
    if who != ident or trading not in ("active", "held", "exit-now"):
        return None
    latched = trading == "exit-now" and bool(reason)
    try:
        stop = math.nan if latched or not sl else float(sl)
        target = float(tp) if tp and not latched else math.nan
        count = int(seq or 0)
    except ValueError:
        return None
    if not latched and not stop > 0:
        return None
    exits = (reason or "", exit_price or "", exit_at or "") if latched else ("", "", "")
    return Prior(math.nan, stop, target, count, now, math.nan, now, *exits)


def prior(raw: str | None, ident: str) -> Prior | None:
    """The memory in `raw` when it belongs to this identity; None for a new position."""
    if not raw:
        return None
    written = _WRITTEN.get(ident)
    if written is not None and written[0] == raw:
        return written[1]  # what this process wrote last: no need to parse it again
    parsed = _parse(raw)
    return parsed[0] if parsed is not None and parsed[1] == ident else None


def _parse(raw: str) -> tuple[Prior, str] | None:
    parts = raw.split("|", PARTS - 1)
    if len(parts) != PARTS or parts[0] != VERSION:
        return None
    try:
        peak, sl, tp, _, opened_at, price, price_at = map(float.fromhex, parts[1:8])
        seq = int(parts[4])
    except ValueError:
        return None  # never a crash on a hand-edited field: the position starts afresh
    return Prior(peak, sl, tp, seq, opened_at, price, price_at, *parts[8:11]), parts[11]


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
    reason, price and time. Floats are written as `repr`, which reads back exactly."""
    if not len(rows):
        return {}
    pick = np.asarray(rows, dtype=np.intp)
    live = out.valid & ~out.exit_now
    best = np.where(x.side > 0, np.fmax(x.peak, x.price), np.fmin(x.peak, x.price))
    old = [_FRESH if p is None else p for p in priors]
    sl = np.where(live, out.stop_loss, np.array([p.sl for p in old]))
    tp = np.where(live, out.take_profit, np.array([p.tp for p in old]))
    values = [column[pick].tolist() for column in (best, sl, tp, x.price)]
    texts = [list(map(float.hex, column)) for column in values]
    hex_now = float.hex(now)
    bits, exits = out.reasons.tolist(), out.exit_now.tolist()
    memory = {}
    for j, i in enumerate(rows):
        p, ident = old[i], idents[i]
        price = values[3][j]
        opened = now if priors[i] is None else p.opened_at
        price_at = p.price_at if priors[i] is not None and price == p.price else now
        reason, exit_price, exit_at = p.exit_reason, p.exit_price, p.exit_at
        if not reason and exits[i]:
            reason, exit_price, exit_at = exit_reason(bits[i]), f"{price:.10g}", f"{now:.3f}"
        raw = (
            f"{VERSION}|{texts[0][j]}|{texts[1][j]}|{texts[2][j]}|{p.seq + 1}|"
            f"{hex_now if opened is now else float.hex(opened)}|{texts[3][j]}|"
            f"{hex_now if price_at is now else float.hex(price_at)}|{reason}|{exit_price}|"
            f"{exit_at}|{ident}"
        )
        memory[i] = raw
        _WRITTEN[ident] = raw, Prior(
            values[0][j], values[1][j], values[2][j], p.seq + 1, opened, price, price_at,
            reason, exit_price, exit_at,
        )  # fmt: skip
    if len(_WRITTEN) > 100_000:  # identities of long-closed positions: start over
        _WRITTEN.clear()
    return memory


# identity -> (the memory this process last wrote, parsed): a pure cache, since a Prior is a
# function of its text; a read of anything else is parsed.
_WRITTEN: dict[str, tuple[str, Prior]] = {}
_FRESH = Prior(math.nan, math.nan, math.nan, 0, math.nan, math.nan, math.nan, "", "", "")
