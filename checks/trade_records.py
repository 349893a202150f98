"""QT504: garbage in the closed-trade stream, judged by the RL agent's own validator."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

from qtctl.adapters.redis_client import text
from qtctl.adapters.stream_quarantine import pending_ids
from qtctl.daemons.rl_agent.records import Rejected, experience, source_maps
from qtctl.engine.check import Check
from qtctl.engine.context import CheckContext
from qtctl.engine.facts import QuarantineFacts
from qtctl.engine.findings import CodeDoc, Finding, Severity

# Records that are wrong in themselves; test lanes, unknown producers and the agent's own output
# are not garbage, just not for learning.
GARBAGE = frozenset(
    {
        "missing-field",
        "bad-side",
        "bad-price",
        "pnl-inconsistent",
        "implausible-pnl",
        "bad-leverage",
    }
)
GARBAGE_TRADES = CodeDoc(
    code="QT504",
    title="garbage closed-trade records",
    severity="error",
    meaning="Among the newest daemons.trade_scan entries of the closed-trade stream "
    "(rl.trade_stream), records that the RL agent's validator rejects as wrong in themselves: "
    "missing fields, impossible prices or side, a PnL that contradicts the record's own prices "
    "(the old daemon's `PnL=0.00 (-100 %)`), an implausible PnL. The detail counts them by "
    "reason and by producer (`source`), and how many a consumer group still has pending.",
    why="Any consumer that re-reads the history (a new group at 0, a replay, a retrain) learns "
    "from them: the incident's RL daemon trained on reward -1 for trades that never lost.",
    fix="Fix the producer named in the detail; `qtctl fix --apply --unsafe` archives the garbage "
    "records, copies them to `<stream>:quarantine` with the reason and deletes them from the "
    "stream (never entries a group still has pending).",
    repair=QuarantineFacts,
)


def run(ctx: CheckContext) -> Iterator[Finding]:
    """One finding when the newest closed trades hold garbage."""
    stream = ctx.config.streams.prefix + ctx.config.rl.trade_stream
    adapter = ctx.redis()
    with adapter.guard("the closed-trade check"):
        entries = adapter.client.xrevrange(stream, count=ctx.config.daemons.trade_scan)
        if not entries:
            return
        pending = pending_ids(adapter.client, stream)
    bad = garbage(ctx, entries)
    if not bad:
        return
    reasons = Counter(reason for _, reason, _ in bad)
    producers = Counter(source for _, _, source in bad)
    held = [entry_id for entry_id, _, _ in bad if entry_id in pending]
    detail = [
        "reasons: " + ", ".join(f"{r} {n}" for r, n in reasons.most_common()),
        "producers: " + ", ".join(f"{p or '?'} {n}" for p, n in producers.most_common()),
        f"ids: {bad[-1][0]} .. {bad[0][0]}",
    ]
    if held:
        detail.append(f"pending in a consumer group (left alone by the fix): {len(held)}")
    facts = QuarantineFacts(stream, tuple((entry_id, reason) for entry_id, reason, _ in bad))
    yield Finding(
        GARBAGE_TRADES.code,
        Severity.ERROR,
        stream,
        f"{len(bad)} of the newest {len(entries)} closed trades are garbage "
        f"({reasons.most_common(1)[0][0]} most)",
        cause="garbage-records",
        detail=tuple(detail),
        fix_hint=GARBAGE_TRADES.fix,
        facts=facts if len(held) < len(bad) else None,
    )


def garbage(ctx: CheckContext, entries: list[Any]) -> list[tuple[str, str, str]]:
    """(id, reason, producer) of every garbage record, newest first."""
    rl = ctx.config.rl
    try:
        sources = source_maps(rl.sources)
    except ValueError:
        sources = source_maps(("*=pnl_percent:percent",))
    found = []
    for entry_id, raw in entries:
        fields = {text(k): text(v) for k, v in raw.items()}
        try:
            experience(fields, sources, None, rl.pnl_tolerance_pct, rl.max_abs_pnl_pct)
        except Rejected as exc:
            if exc.reason in GARBAGE:
                found.append((text(entry_id), exc.reason, fields.get("source", "")))
    return found


CHECK = Check(name="trade_records", codes=(GARBAGE_TRADES,), run=run)
