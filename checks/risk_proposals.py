"""QT501: risk proposals that are wrong: SL/TP on the wrong side of price, TP beyond SL,
non-finite values, or stale (older than three publish intervals); and open positions that have
none although a publisher is there (refs: the publisher units, for the incident rules)."""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any

from qtctl.config import RiskSettings
from qtctl.diagnosis.unit_instances import units_on_disk
from qtctl.engine.check import Check
from qtctl.engine.context import CheckContext
from qtctl.engine.findings import CodeDoc, Finding, Ref, Severity
from qtctl.engine.refs import written_by
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
    "(warning, cause undecodable-name) and not read. Open positions "
    "(`quantum:state:positions:<symbol>` with `age_sec` of at least three publish intervals and "
    "`qty` not 0) without a proposal are one error (cause missing-proposal) when something "
    "shows that proposals are published here: a unit of risk.publisher_units is installed on "
    "this host, or other proposals or the kernel's counters exist. A position without `age_sec` "
    "may be too new to have one and is not counted. Stale proposals (cause stale) and missing "
    "ones name the installed publisher units, so doctor puts them under that unit's failure.",
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
MAX_SYMBOLS = 6


def run(ctx: CheckContext) -> Iterator[Finding]:
    """Every proposal hash, with its position's price where the proposal lacks one; then the
    open positions that have no proposal."""
    settings = ctx.config.risk
    adapter = ctx.redis()
    with adapter.guard("the risk proposal check"):
        client = adapter.client
        found = sorted(
            client.scan_iter(match=f"{settings.proposal_prefix}*", count=1000, _type="hash")
        )
        keys = [key for key in found if not undecodable(key)]
        yield from (_undecodable(key) for key in found if undecodable(key))
        pipe = client.pipeline(transaction=False)
        for key in keys:
            pipe.hgetall(key)
            pipe.hgetall(settings.position_prefix + key[len(settings.proposal_prefix) :])
        replies = pipe.execute(raise_on_error=False) if keys else []
        uncovered = _uncovered(client, settings, keys)
        stats = client.hgetall(settings.stats_key)
    publishers = _publishers(settings)
    refs = tuple(ref for unit in publishers for ref in written_by(unit))
    yield from _kernel_counters(stats if isinstance(stats, dict) else {}, settings.stats_key)
    for i, key in enumerate(keys):
        proposal, position = replies[2 * i], replies[2 * i + 1]
        if isinstance(proposal, Exception):
            continue  # deleted or retyped between SCAN and HGETALL
        yield from _judged(key, proposal, position, ctx.clock(), settings, refs)
    if uncovered and (publishers or keys or stats):
        yield _missing(settings, uncovered, publishers, len(keys), refs)


def _judged(
    key: str,
    proposal: Mapping[str, str],
    position: object,
    now: float,
    settings: RiskSettings,
    refs: tuple[Ref, ...],
) -> Iterator[Finding]:
    limit = 3 * settings.publish_interval_sec
    problems = problems_of(proposal, position if isinstance(position, dict) else {}, now, limit)
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
        stale = all(p.startswith("stale") for p in problems)  # the publisher stopped
        yield Finding(
            INVALID_PROPOSAL.code,
            Severity.ERROR,
            key,
            problems[0],
            cause="stale" if stale else "invalid-proposal",
            detail=tuple(problems),
            fix_hint=INVALID_PROPOSAL.fix,
            refs=refs if stale else (),
        )


def _uncovered(client: Any, settings: RiskSettings, keys: list[str]) -> list[tuple[str, float]]:
    """(position key, age) of each open position old enough to have a proposal (`age_sec` at
    least three publish intervals, `qty` not 0) whose symbol has no proposal hash."""
    covered = {key[len(settings.proposal_prefix) :] for key in keys}
    prefix = settings.position_prefix
    positions = sorted(
        key
        for key in client.scan_iter(match=f"{prefix}*", count=1000, _type="hash")
        if not undecodable(key) and key[len(prefix) :] not in covered
    )
    if not positions:
        return []
    pipe = client.pipeline(transaction=False)
    for key in positions:
        pipe.hmget(key, "age_sec", "qty")
    limit = 3 * settings.publish_interval_sec
    found = []
    for key, reply in zip(positions, pipe.execute(raise_on_error=False), strict=True):
        if isinstance(reply, Exception):
            continue  # closed (deleted) or retyped since SCAN
        age, qty = (_float(value) for value in reply)
        if age is not None and age >= limit and qty != 0:
            found.append((key, age))
    return found


def _publishers(settings: RiskSettings) -> list[str]:
    """The units of risk.publisher_units installed on this host (unit file on disk, not
    masked): the evidence that proposals are published here, and by whom."""
    names = [name for name in settings.publisher_units if name]
    return sorted(units_on_disk(names)) if names else []


def _missing(
    settings: RiskSettings,
    uncovered: list[tuple[str, float]],
    publishers: list[str],
    published: int,
    refs: tuple[Ref, ...],
) -> Finding:
    symbols = [key[len(settings.position_prefix) :] for key, _ in uncovered]
    shown = ", ".join(symbols[:MAX_SYMBOLS]) + (
        f" (+{len(symbols) - MAX_SYMBOLS} more)" if len(symbols) > MAX_SYMBOLS else ""
    )
    by = (
        f"publisher: {', '.join(publishers)} (risk.publisher_units, installed on this host)"
        if publishers
        else "no unit of risk.publisher_units is installed on this host; "
        f"{published} other proposal(s) or the kernel's counters show one publishes"
    )
    return Finding(
        INVALID_PROPOSAL.code,
        Severity.ERROR,
        f"{settings.proposal_prefix}*",
        f"no proposal for {len(symbols)} open position(s): {shown}",
        cause="missing-proposal",
        detail=(
            by,
            *(
                f"{key}: open {age:.0f} s, no {settings.proposal_prefix}{symbol}"
                for (key, age), symbol in zip(uncovered, symbols, strict=True)
            ),
        ),
        fix_hint="Get the publisher running again (its own finding says why it stopped); "
        "until then these positions have no stop-loss or take-profit from it.",
        refs=refs,
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


def _kernel_counters(stats: Mapping[str, str], key: str) -> Iterator[Finding]:
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
    return next((_float(data[name]) for name in names if name in data), None)


def _float(raw: object) -> float | None:
    """A Redis field as a number: None when absent, NaN when it is not one."""
    if raw is None:
        return None
    try:
        return float(str(raw))
    except ValueError:
        return math.nan


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
