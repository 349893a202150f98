"""Repairs of Redis streams: trim (QT401), a missing group (QT403), dead or idle consumers
(QT404), a near-miss name's entries (QT405) and garbage records (QT504)."""

from __future__ import annotations

from qtctl.adapters.stream_archive import order
from qtctl.adapters.stream_quarantine import pending_ids
from qtctl.bridge_routes import parse_routes
from qtctl.engine.facts import (
    ConsumerFacts,
    GroupFacts,
    MigrationFacts,
    QuarantineFacts,
    StreamFacts,
)
from qtctl.engine.findings import Finding
from qtctl.errors import ConfigError
from qtctl.fix.actions import (
    CreateGroup,
    DeleteConsumer,
    HandOver,
    MigrateStream,
    QuarantineEntries,
    TrimStream,
)
from qtctl.fix.policy import stream_permission
from qtctl.fix.repair import Planning, Repair
from qtctl.stream_limits import limits_for


def plan_trim(finding: Finding, facts: StreamFacts, planning: Planning) -> Repair:
    """QT401: trim to the stream's retention, archiving every trimmed entry first."""
    limits = limits_for(planning.ctx.config.streams, facts.stream)
    action = TrimStream(facts.stream, limits.retention_maxlen, limits.retention_max_age_sec)
    held = (
        ""
        if planning.options.unsafe
        else "trimming a stream needs --unsafe (the trimmed entries are archived and restorable)"
    )
    return Repair(finding, (action,), held=held or _live(planning, facts.stream))


def plan_group(finding: Finding, facts: GroupFacts, planning: Planning) -> Repair:
    """QT403 group-missing: create it at streams.group_start_id (additive, no --unsafe); in live
    mode, a group at 0 hands its consumer the whole history, so the stream must be named."""
    start = planning.ctx.config.streams.group_start_id
    held = _live(planning, facts.stream) if start == "0" else ""
    return Repair(finding, (CreateGroup(facts.stream, facts.group, start),), held=held)


def plan_hand_over(finding: Finding, facts: ConsumerFacts, planning: Planning) -> Repair:
    """QT404: a live consumer of the same group takes the dead one's pending entries; an idle
    one holding nothing is deleted."""
    if not facts.pending:
        return Repair(finding, (DeleteConsumer(facts.stream, facts.group, facts.consumer),))
    if not facts.live:
        return Repair(
            finding,
            held="no live consumer in the group to take the pending entries: "
            "start the consumer service, it will claim them",
        )
    action = HandOver(facts.stream, facts.group, facts.consumer, facts.live[0])
    held = (
        ""
        if planning.options.unsafe
        else ("redelivering entries can process an event twice: needs --unsafe")
    )
    return Repair(finding, (action,), held=held or _live(planning, facts.stream))


def plan_migrate(finding: Finding, facts: MigrationFacts, planning: Planning) -> Repair:
    """QT405 near-miss: move entries into the expected name, only where the evidence agrees."""
    if facts.against:
        return Repair(finding, held=facts.against[0])
    actions = tuple(MigrateStream(source, facts.target) for source in facts.sources)
    blocked = _bridge_conflict(planning, facts.sources, facts.target)
    if blocked:
        return Repair(finding, actions, held=blocked)
    held = (
        ""
        if planning.options.unsafe
        else "moving entries between streams changes what consumers read: needs --unsafe "
        "(the source is archived first)"
    )
    return Repair(finding, actions, held=held or _live(planning, facts.target))


def _bridge_conflict(planning: Planning, sources: tuple[str, ...], target: str) -> str:
    """Entries beyond the position of qtctl's bridge into `target` would stop that bridge as a
    foreign writer (and may repeat what it will copy): say so before moving anything."""
    try:
        routes = [r for r in parse_routes(planning.ctx.config) if target in r.destinations]
    except ConfigError:
        return ""  # no valid bridge routes: the bridge cannot be running on them
    if not routes:
        return ""
    adapter = planning.ctx.redis()
    with adapter.guard("planning the migration"):
        pipe = adapter.client.pipeline(transaction=False)
        for route in routes:
            pipe.hget(route.state_key, "position")
        for source in sources:
            pipe.xrevrange(source, count=1)
        replies = pipe.execute()
    positions, lasts = replies[: len(routes)], replies[len(routes) :]
    for route, position in zip(routes, positions, strict=True):
        for source, last in zip(sources, lasts, strict=True):
            if position and last and order(str(last[0][0])) > order(str(position)):
                return (
                    f"qtctl's bridge copies {route.source} into {target} and is at {position}; "
                    f"{source} ends at {last[0][0]}: entries beyond the bridge's position "
                    "would stop it as a foreign writer (and may repeat what it copies). "
                    "Compare them with the source first, then migrate only the older ones"
                )
    return ""


def plan_quarantine(finding: Finding, facts: QuarantineFacts, planning: Planning) -> Repair:
    """QT504: move the garbage records (not pending in any group) out of the stream."""
    adapter = planning.ctx.redis()
    with adapter.guard("planning the quarantine"):
        pending = pending_ids(adapter.client, facts.stream)
    reasons = tuple((entry_id, why) for entry_id, why in facts.garbage if entry_id not in pending)
    if not reasons:
        return Repair(finding, held="every garbage record is pending in a consumer group")
    held = (
        ""
        if planning.options.unsafe
        else (
            "deleting entries from a stream consumers read needs --unsafe (they are archived and "
            "kept in the quarantine stream)"
        )
    )
    return Repair(
        finding,
        (QuarantineEntries(facts.stream, reasons),),
        held=held or _live(planning, facts.stream),
        manual="fix the producer named in the detail, or the garbage comes back",
    )


def _live(planning: Planning, stream: str) -> str:
    return stream_permission(stream, planning.options, planning.live)
