"""QT401-QT405, QT407: the fleet's Redis streams, read in a few pipelined round trips."""

from __future__ import annotations

from collections.abc import Iterator

from qtctl.adapters.redis_client import NOT_UTF8, GroupInfo, StreamInfo, read_streams, stream_keys
from qtctl.diagnosis.stream_names import MAX_FILES, bare, near_misses, references
from qtctl.engine.check import Check
from qtctl.engine.context import CheckContext
from qtctl.engine.facts import ConsumerFacts, GroupFacts, MigrationFacts, StreamFacts
from qtctl.engine.findings import CodeDoc, Finding, Ref, Severity
from qtctl.engine.refs import written_by
from qtctl.engine.wording import duration
from qtctl.errors import AdapterUnavailable
from qtctl.escaping import undecodable
from qtctl.stream_ids import id_ms, order_or_zero
from qtctl.stream_limits import StreamLimits, limits_for

TOO_LONG = CodeDoc(
    "QT401",
    "stream too long",
    "warning/error",
    "A stream holds more entries than streams.length_warn / length_error, or more memory than "
    "streams.memory_error_mb (MEMORY USAGE); the finding says whether anything trims it "
    "(entries added versus entries kept).",
    "Unbounded streams eat Redis memory until eviction or OOM takes the whole fleet down.",
    "Have producers XADD with MAXLEN ~ N, or trim to a retention (`XTRIM KEY MAXLEN ~ N`).",
    repair=StreamFacts,
)
STALE = CodeDoc(
    "QT402",
    "stale stream",
    "warning",
    "The newest entry of a live stream (streams.live) is older than streams.stale_after_sec; the "
    "entry ID's timestamp says when it was written.",
    "A producer that silently stopped: everything downstream works on old data.",
    "Find the producer (its unit's journal) and restart it once its cause is fixed.",
)
GROUP_LAG = CodeDoc(
    "QT403",
    "consumer group lag or pending entries",
    "warning/error",
    "A consumer group is streams.lag_warn / lag_error entries behind, or holds pending entries "
    "delivered longer than streams.pending_idle_sec ago and never acknowledged.",
    "Consumers fell behind: decisions are made on old events, or entries are never processed.",
    "Scale or fix the consumer; XAUTOCLAIM pending entries of dead consumers. A group listed "
    "in the stream's `groups` that is missing: qtctl fix creates it at streams.group_start_id.",
    repair=GroupFacts,
)
DEAD_CONSUMER = CodeDoc(
    "QT404",
    "dead consumer",
    "warning",
    "A consumer idle longer than streams.dead_consumer_sec while holding pending entries.",
    "Its entries stay pending forever unless another consumer claims them.",
    "XAUTOCLAIM its pending entries to a live consumer, then XGROUP DELCONSUMER it (qtctl fix "
    "--unsafe); leftover consumers with nothing pending are deleted by qtctl fix.",
    repair=ConsumerFacts,
)
MISSING = CodeDoc(
    "QT405",
    "expected stream missing or misnamed",
    "error/warning",
    "An expected stream (streams.expected) does not exist or is not a stream, or another stream "
    "has a near-miss name (a truncation, prefix or small edit, with or without the fleet "
    "prefix). Both names are reported with counts, newest entry, consumer groups, and the files "
    "(code roots, env files) that name each: follow the evidence, not the spelling. A stream "
    "whose name is not valid UTF-8 is reported (warning, cause undecodable-name) and not "
    "checked further: nothing can name it as text.",
    "A bridge writing one name while readers read another moves nothing, silently.",
    "Decide from the evidence which name readers and writers use; migrate entries and fix the "
    "other side's configuration (qtctl fix --unsafe migrates when the evidence agrees).",
    repair=MigrationFacts,
)
BEHIND_TRIM = CodeDoc(
    "QT407",
    "consumer behind the trim",
    "error",
    "A group's last-delivered ID is older than the stream's first entry (entries were trimmed "
    "before the group read them), or Redis cannot compute the group's lag. A stream sitting at "
    "its MAXLEN cap is not a backlog by itself: backlog is judged by group lag.",
    "Data was lost to the consumer, and its lag is unknown.",
    "Raise the producer's MAXLEN or speed the consumer up; reset the group to the first entry.",
)
CODES = (TOO_LONG, STALE, GROUP_LAG, DEAD_CONSUMER, MISSING, BEHIND_TRIM)


def run(ctx: CheckContext) -> Iterator[Finding]:
    """All stream checks over one SCAN and one or two pipelines."""
    settings = ctx.config.streams
    adapter = ctx.redis()
    expected = [settings.prefix + name for name in settings.expected]
    with adapter.guard("the stream checks"):
        keys = stream_keys(adapter.client, "*", settings.scan_count)
        infos = read_streams(adapter.client, sorted(set(keys) | set(expected)))
    ctx.memo("stream_infos", lambda: infos)  # the health report's per-stream metrics
    now_ms = int(ctx.clock() * 1000)
    for stream in infos.values():
        if stream.error == NOT_UTF8:
            yield _undecodable(stream)
            continue
        if stream.error and stream.name not in expected:
            continue
        limits = limits_for(settings, stream.name)
        yield from _length(stream, limits)
        yield from _staleness(ctx, stream, limits, now_ms)
        yield from _groups(stream, limits)
    yield from _names(ctx, infos, keys, now_ms)


def _undecodable(stream: StreamInfo) -> Finding:
    what = "stream key name is not valid UTF-8: its length, groups and lag are not checked"
    hint = "fix the producer's key name (the bytes are shown as \\xNN): no reader can name it"
    return Finding(MISSING.code, Severity.WARNING, stream.name, what, "undecodable-name", (), hint)


def _length(stream: StreamInfo, settings: StreamLimits) -> Iterator[Finding]:
    memory_mb = (stream.memory or 0) / 2**20
    if stream.length >= settings.length_error or memory_mb >= settings.memory_error_mb:
        severity = Severity.ERROR
    elif stream.length >= settings.length_warn:
        severity = Severity.WARNING
    else:
        return
    trimmed = (stream.entries_added or 0) - stream.length
    trim = f"trimmed: {trimmed} entries removed so far" if trimmed > 0 else "nothing trims it"
    yield Finding(
        TOO_LONG.code,
        severity,
        stream.name,
        f"{stream.length} entries, {memory_mb:.1f} MiB; {trim}",
        cause="trimmed" if trimmed > 0 else "unbounded",
        fix_hint=TOO_LONG.fix,
        facts=StreamFacts(stream.name),
    )


def _staleness(
    ctx: CheckContext, stream: StreamInfo, settings: StreamLimits, now_ms: int
) -> Iterator[Finding]:
    if not settings.live or stream.error:
        return
    newest = id_ms(stream.last_id or stream.last_generated)
    if not newest:
        return  # empty and never written: QT405's business
    age = (now_ms - newest) / 1000
    if age > settings.stale_after_sec:
        cause, producer = _producer_state(ctx, settings.producer)
        yield Finding(
            STALE.code,
            Severity.WARNING,
            stream.name,
            f"newest entry is {_ago(age)} old (limit {_ago(settings.stale_after_sec)})"
            + (f"; {producer}" if producer else ""),
            cause=cause,
            fix_hint=STALE.fix,
            refs=(Ref("stream", stream.name), *written_by(settings.producer)),
        )


def _producer_state(ctx: CheckContext, unit: str) -> tuple[str, str]:
    """(cause, words) for the stream's producer unit: running yet silent, or down."""
    if not unit:
        return "stale", ""
    try:
        state = ctx.memo(f"unit-state:{unit}", lambda: ctx.systemd().unit_state(unit))
    except AdapterUnavailable as exc:
        return "stale", f"producer {unit}: state unknown ({exc.reason})"
    if state in ("active", "reloading"):
        return "silent-producer", f"producer {unit} is {state} yet writes nothing"
    return "producer-down", f"producer {unit} is {state}"


def _groups(stream: StreamInfo, settings: StreamLimits) -> Iterator[Finding]:
    oldest = dict(stream.oldest_pending_idle_ms)
    deleted = order_or_zero(stream.max_deleted) if stream.max_deleted else (0, 0)
    trimmed = (stream.entries_added or 0) > stream.length and bool(stream.first_id)
    for group in stream.groups:
        subject = f"{stream.name} group {group.name}"
        delivered = order_or_zero(group.last_delivered)
        # XDEL records max-deleted-entry-id; XTRIM does not (Redis 7.0), so a trim shows as
        # entries added > length with the group's last delivery before the first entry.
        if deleted > delivered or (trimmed and delivered < order_or_zero(stream.first_id)):
            lost = (stream.entries_added or 0) - stream.length
            yield Finding(
                BEHIND_TRIM.code,
                Severity.ERROR,
                subject,
                f"last delivered {group.last_delivered} is older than the first entry "
                f"{stream.first_id}: entries were trimmed unread (up to {lost} lost; "
                "Redis's lag figure is meaningless here)",
                cause="behind-trim",
                fix_hint=BEHIND_TRIM.fix,
            )
            continue
        if group.lag is None:
            yield Finding(
                BEHIND_TRIM.code,
                Severity.ERROR,
                subject,
                "Redis cannot compute this group's lag",
                cause="lag-unknown",
                fix_hint=BEHIND_TRIM.fix,
            )
        finding = _lag(group, subject, oldest.get(group.name, 0) / 1000, settings)
        if finding:
            yield finding
    present = {g.name for g in stream.groups}
    for missing in (g for g in settings.groups if g not in present):
        yield Finding(
            GROUP_LAG.code,
            Severity.WARNING,
            f"{stream.name} group {missing}",
            "consumer group missing: its consumers cannot read with acknowledgements",
            cause="group-missing",
            detail=(f"stream: {stream.name}", f"group: {missing}"),
            fix_hint="qtctl fix creates it at streams.group_start_id ($: new entries only)",
            facts=GroupFacts(stream.name, missing),
        )
    yield from _consumers(stream, settings)


def _consumers(stream: StreamInfo, settings: StreamLimits) -> Iterator[Finding]:
    limit_ms = settings.dead_consumer_sec * 1000
    for group_name, consumer in stream.consumers:
        if not consumer.pending and consumer.idle_ms > limit_ms:
            yield Finding(
                DEAD_CONSUMER.code,
                Severity.INFO,
                f"{stream.name} group {group_name} consumer {consumer.name}",
                f"idle {_ago(consumer.idle_ms / 1000)} with nothing pending: a leftover name, or "
                "a reader whose blocking reads return nothing (Redis before 7.2 does not count "
                "those as activity)",
                cause="idle-consumer",
                detail=(
                    f"stream: {stream.name}",
                    f"group: {group_name}",
                    f"consumer: {consumer.name}",
                ),
                fix_hint="qtctl fix deletes it (only while it still holds nothing)",
                facts=_named(ConsumerFacts(stream.name, group_name, consumer.name, 0, ())),
            )
        if consumer.pending and consumer.idle_ms > limit_ms:
            live = [
                c.name for g, c in stream.consumers if g == group_name and c.idle_ms <= limit_ms
            ]
            yield Finding(
                DEAD_CONSUMER.code,
                Severity.WARNING,
                f"{stream.name} group {group_name} consumer {consumer.name}",
                f"idle {_ago(consumer.idle_ms / 1000)} holding {consumer.pending} pending entries",
                cause="dead-consumer",
                detail=(
                    f"stream: {stream.name}",
                    f"group: {group_name}",
                    f"consumer: {consumer.name}",
                    f"live consumers: {', '.join(live)}",
                ),
                fix_hint=DEAD_CONSUMER.fix,
                facts=_named(
                    ConsumerFacts(
                        stream.name, group_name, consumer.name, consumer.pending, tuple(live)
                    )
                ),
            )


def _lag(group: GroupInfo, subject: str, idle: float, settings: StreamLimits) -> Finding | None:
    """Lag and stale pending entries of one group, as one finding."""
    parts, severity, causes = [], Severity.INFO, []
    if group.lag is not None and group.lag >= settings.lag_warn:
        severity = Severity.ERROR if group.lag >= settings.lag_error else Severity.WARNING
        parts.append(f"{group.lag} entries behind, {group.pending} pending")
        causes.append("lag")
    if group.pending and idle > settings.pending_idle_sec:
        severity = max(severity, Severity.WARNING)
        parts.append(
            f"the oldest pending entry was delivered {_ago(idle)} ago and never acknowledged"
        )
        causes.append("pending")
    if not parts:
        return None
    return Finding(
        GROUP_LAG.code,
        severity,
        subject,
        "; ".join(parts),
        cause=",".join(causes),
        fix_hint=GROUP_LAG.fix,
        refs=(Ref("group", subject),),
    )


def _names(
    ctx: CheckContext, infos: dict[str, StreamInfo], keys: list[str], now_ms: int
) -> Iterator[Finding]:
    settings = ctx.config.streams
    for name in settings.expected:
        key = settings.prefix + name
        info = infos[key]
        misses = [k for k in near_misses(name, keys, settings.prefix) if infos[k].length]
        if not misses and not info.error:
            continue
        if info.error == "not a stream (WRONGTYPE)":
            problem = f"{key} exists but is not a stream"
        elif info.error:
            problem = f"{key} does not exist"
        elif not info.length:
            never = info.last_generated in ("", "0-0")
            problem = f"{key} is empty" + (" (never written)" if never else "")
        else:
            problem = ""
        if not misses:
            yield Finding(
                MISSING.code, Severity.ERROR, key, problem, cause="missing", fix_hint=MISSING.fix
            )
            continue
        yield _near_miss(ctx, info, [infos[k] for k in misses], problem, now_ms)


def _near_miss(
    ctx: CheckContext, expected: StreamInfo, others: list[StreamInfo], problem: str, now_ms: int
) -> Finding:
    settings = ctx.config.streams
    streams = [expected, *others]
    refs, complete = references(
        [bare(s.name, settings.prefix) for s in streams] + [s.name for s in streams],
        list(ctx.config.fleet.code_roots),
    )
    detail = []
    files_of: dict[str, list[str]] = {}
    for stream in streams:
        newest = id_ms(stream.last_id)
        age = f"newest {_ago((now_ms - newest) / 1000)} ago" if newest else "no entries"
        groups = ", ".join(g.name for g in stream.groups) or "no consumer groups"
        files = sorted(
            set(refs.get(stream.name, []) + refs.get(bare(stream.name, settings.prefix), []))
        )
        files_of[stream.name] = files
        named = f"named in {len(files)} file(s)" + (f": {', '.join(files[:5])}" if files else "")
        state = stream.error or f"{stream.length} entries, {age}"
        detail.append(f"{stream.name}: {state}; {groups}; {named}")
    against = dict(_direction(expected, others, files_of))
    if not complete:  # which side the code names is unknown: nothing moves on a guess
        against = {
            name: why
            or f"the code roots hold more than {MAX_FILES} files: which name the code "
            "uses is not known; migrate by hand"
            for name, why in against.items()
        }
    detail.extend(
        f"evidence: {why}" if why else f"migrate-from: {name}" for name, why in against.items()
    )
    facts = MigrationFacts(
        expected.name,
        tuple(name for name, why in against.items() if not why),
        tuple(why for why in against.values() if why),
    )
    names = ", ".join(s.name for s in others)
    message = (f"{problem}; " if problem else "") + f"near-miss name(s) with data: {names}"
    return Finding(
        MISSING.code,
        Severity.ERROR if problem else Severity.WARNING,
        expected.name,
        message,
        cause="near-miss",
        detail=tuple(detail),
        fix_hint=MISSING.fix,
        facts=facts,
        refs=tuple(Ref("stream", s.name) for s in streams),
    )


def _direction(
    expected: StreamInfo, others: list[StreamInfo], files_of: dict[str, list[str]]
) -> Iterator[tuple[str, str]]:
    """Per near-miss name, the evidence against moving its entries (consumer groups and naming
    files), or '' when they should move into the expected name."""
    for other in others:
        readers_there = bool(other.groups) and not expected.groups
        named_more = len(files_of[other.name]) > len(files_of[expected.name])
        if readers_there or named_more:
            groups = len(other.groups)
            yield (
                other.name,
                (
                    f"readers use {other.name} ({groups} consumer group(s), named in "
                    f"{len(files_of[other.name])} file(s) against {len(files_of[expected.name])}): "
                    f"moving its entries into {expected.name} would take them from its readers; "
                    f"point the writer at {other.name}, or list it in streams.expected"
                ),
            )
        else:
            yield other.name, ""


def _named(facts: ConsumerFacts) -> ConsumerFacts | None:
    """No repair for names that are not UTF-8: fix could not send them back to Redis."""
    names = (facts.stream, facts.group, facts.consumer, *facts.live)
    return None if any(map(undecodable, names)) else facts


def _ago(seconds: float) -> str:
    return duration(seconds, compact=True)


CHECK = Check(name="redis_streams", codes=CODES, run=run)
