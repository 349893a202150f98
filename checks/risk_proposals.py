"""QT501: risk proposals that are wrong: SL/TP on the wrong side of price, TP beyond SL,
non-finite values, or stale (older than three publish intervals)."""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from datetime import datetime

from qtctl.engine.check import Check
from qtctl.engine.context import CheckContext
from qtctl.engine.findings import CodeDoc, Finding, Severity
from qtctl.escaping import undecodable

INVALID_PROPOSAL = CodeDoc(
    code="QT501",
    title="invalid risk proposal",
    severity="error",
    meaning="A `quantum:risk:proposal:<symbol>` hash whose stop-loss or take-profit sits on the "
    "wrong side of the current price for the position's side (a long needs SL < price < TP, a "
    "short TP < price < SL), whose TP is beyond its SL, whose numbers are missing or not "
    "finite, or which is older than three publish intervals (risk.publish_interval_sec). An "
    "explicit exit signal (`trading_state=exit-now`) carries no stop and is not an error; a "
    "proposal the risk kernel holds back (`trading_state=held`) is a warning with its reason; "
    "proposals the kernel rejected for failing its invariants (counter `rejected_invariant` "
    "in risk.stats_key) are an error, and proposals it held back on bad or stale inputs are "
    "reported (info) with its counters by reason (`held:<reason>`, `exit:<reason>`). An empty "
    "`take_profit` is a proposal without a target (risk.tp_policy none), not an error. "
    "A proposal key whose name is not valid UTF-8 is reported "
    "(warning, cause undecodable-name) and not read.",
    why="The old publisher emitted `SL=$106.1072 TP=$106.0695` for a long: acting on it closes "
    "positions at a loss or never takes profit.",
    fix="Stop whatever consumes the proposals, fix the publisher (qtctl's risk kernel never "
    "publishes such a proposal), and delete the stale keys.",
)
SL_FIELDS = ("stop_loss", "proposed_sl")
TP_FIELDS = ("take_profit", "proposed_tp")
SIDE_FIELDS = ("position_side", "side")
PRICE_FIELDS = ("position_current_price", "current_price", "price")
TIME_FIELDS = ("timestamp", "ts", "computed_at_utc")


def run(ctx: CheckContext) -> Iterator[Finding]:
    """Every proposal hash, with its position's price where the proposal lacks one."""
    settings = ctx.config.risk
    adapter = ctx.redis()
    with adapter.guard("the risk proposal check"):
        client = adapter.client
        found = sorted(
            client.scan_iter(match=f"{settings.proposal_prefix}*", count=1000, _type="hash")
        )
        keys = [key for key in found if not undecodable(key)]
        yield from (_undecodable(key) for key in found if undecodable(key))
        if not keys:
            return
        pipe = client.pipeline(transaction=False)
        for key in keys:
            pipe.hgetall(key)
            pipe.hgetall(settings.position_prefix + key[len(settings.proposal_prefix) :])
        replies = pipe.execute(raise_on_error=False)
    limit = 3 * settings.publish_interval_sec
    yield from _kernel_counters(client, settings.stats_key)
    for i, key in enumerate(keys):
        proposal, position = replies[2 * i], replies[2 * i + 1]
        if isinstance(proposal, Exception):
            continue  # deleted or retyped between SCAN and HGETALL
        problems = problems_of(
            proposal, position if isinstance(position, dict) else {}, ctx.clock(), limit
        )
        if proposal.get("trading_state") == "held" and not problems:
            yield Finding(
                INVALID_PROPOSAL.code,
                Severity.WARNING,
                key,
                f"held: no new proposal ({proposal.get('held_reason', 'no reason given')}); "
                "the last valid one stands",
                cause="held",
                fix_hint="Fix the input named in the reason (market state, position snapshot).",
            )
        if problems:
            yield Finding(
                INVALID_PROPOSAL.code,
                Severity.ERROR,
                key,
                problems[0],
                cause="invalid-proposal",
                detail=tuple(problems),
                fix_hint=INVALID_PROPOSAL.fix,
            )


def _undecodable(key: str) -> Finding:
    return Finding(
        INVALID_PROPOSAL.code,
        Severity.WARNING,
        key,
        "proposal key name is not valid UTF-8: it is not checked (and no consumer can name it)",
        cause="undecodable-name",
        fix_hint="fix the publisher's key name (the bytes are shown as \\xNN) and delete the key",
    )


def problems_of(
    proposal: Mapping[str, str], position: Mapping[str, str], now: float, max_age: float
) -> list[str]:
    """Everything wrong with one proposal, most serious first."""
    sl, tp = _number(proposal, SL_FIELDS), _number(proposal, TP_FIELDS)
    price = _number(proposal, PRICE_FIELDS)
    if price is None or not math.isfinite(price):
        price = _number(position, PRICE_FIELDS)
    side = (_text(proposal, SIDE_FIELDS) or _text(position, SIDE_FIELDS)).upper()
    found = []
    if proposal.get("trading_state") == "exit-now":  # an exit signal carries no stop
        stamp = _timestamp(proposal)
        return (
            []
            if not stamp or now - stamp <= max_age
            else [f"stale exit signal ({now - stamp:.0f} s)"]
        )
    no_target = all(proposal.get(name) == "" for name in TP_FIELDS if name in proposal)
    no_target &= any(name in proposal for name in TP_FIELDS)  # `""`: no target by policy
    for label, value in (("stop-loss", sl), ("take-profit", tp), ("price", price)):
        if label == "take-profit" and no_target:
            continue
        if value is None or not math.isfinite(value) or value <= 0:
            found.append(f"{label} is {'missing' if value is None else value}: not a usable number")
    if found or side not in ("LONG", "SHORT"):
        return found + (
            [f"position side {side or 'missing'} is not LONG or SHORT"]
            if side not in ("LONG", "SHORT")
            else []
        )
    assert sl is not None and price is not None
    found += _sides(side, sl, math.nan if no_target or tp is None else tp, price)
    stamp = _timestamp(proposal)
    age = now - stamp
    if not stamp:
        found.append("no timestamp: its age is unknown")
    elif age > max_age:
        found.append(f"stale: computed {age:.0f} s ago (limit {max_age:.0f} s)")
    return found


def _kernel_counters(client: object, key: str) -> Iterator[Finding]:
    stats = client.hgetall(key)  # type: ignore[attr-defined]
    stats = stats if isinstance(stats, dict) else {}
    rejected = _int(stats.get("rejected_invariant"))
    # The kernel's counters by reason: held:<code> (no new proposal), exit:<reason> (exits).
    detail = tuple(
        f"{name} {stats[name]}"
        for name in sorted(stats)
        if name.startswith(("held", "exit:", "rejected_")) and _int(stats[name])
    )
    if rejected:
        yield Finding(
            INVALID_PROPOSAL.code,
            Severity.ERROR,
            key,
            f"the risk kernel rejected {rejected} proposal(s) that failed its invariants "
            "(not published; see its journal)",
            cause="kernel-rejected",
            detail=detail,
            fix_hint="Read `journalctl -u qtctl-risk-kernel` for the symbols and inputs.",
        )
    elif _int(stats.get("held")):
        yield Finding(
            INVALID_PROPOSAL.code,
            Severity.INFO,
            key,
            f"the risk kernel held {_int(stats.get('held'))} proposal(s) back on bad or stale "
            "inputs (the last valid ones stood)",
            cause="kernel-held",
            detail=detail,
            fix_hint="Fix the inputs the counters name (held:<reason>).",
        )


def _int(raw: object) -> int:
    try:
        return int(str(raw or 0))
    except ValueError:
        return 0


def _sides(side: str, sl: float, tp: float, price: float) -> list[str]:
    long = side == "LONG"
    found = []
    if (sl >= price) if long else (sl <= price):
        found.append(f"{side}: stop-loss {sl:g} is on the wrong side of price {price:g}")
    if (tp <= price) if long else (tp >= price):
        found.append(f"{side}: take-profit {tp:g} is on the wrong side of price {price:g}")
    if (tp <= sl) if long else (tp >= sl):
        found.append(f"{side}: take-profit {tp:g} is beyond the stop-loss {sl:g}")
    return found


def _number(data: Mapping[str, str], names: tuple[str, ...]) -> float | None:
    for name in names:
        if name in data:
            try:
                return float(data[name])
            except ValueError:
                return math.nan
    return None


def _text(data: Mapping[str, str], names: tuple[str, ...]) -> str:
    return next((str(data[n]) for n in names if data.get(n)), "")


def _timestamp(proposal: Mapping[str, str]) -> float:
    for name in TIME_FIELDS:
        raw = proposal.get(name)
        if not raw:
            continue
        try:
            value = float(raw)
            return value / 1000 if value > 1e11 else value  # milliseconds or seconds
        except ValueError:
            pass
        try:
            return datetime.fromisoformat(raw.replace("Z", "+00:00")).timestamp()
        except ValueError:
            continue
    return 0.0


CHECK = Check(name="risk_proposals", codes=(INVALID_PROPOSAL,), run=run)
