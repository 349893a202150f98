"""`qtctl run risk-kernel`: read positions, compute all proposals at once, publish the sane ones.

Calculation only: it never places orders. Every interval (and as soon as a position's inputs
change) each open position gets a proposal hash `risk.proposal_prefix + SYMBOL` and an entry in
the append-only proposal stream. Rows the kernel rejects are not published: the last valid
proposal stays, flagged `trading_state=held` with the reason, and the rejection is counted in
`risk.stats_key` (doctor's QT501 reads the counters). No positions, no proposals: never synthetic.
The kernel's memory of each position (`state.py`) lives in `risk.state_key`, written before the
proposals it keeps; an exit-now stays until the position is gone. On start, proposals of
positions that do not exist are deleted, whoever published them (`sweep.py`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from itertools import chain
from typing import Any

from qtctl.adapters import resp
from qtctl.adapters.redis_client import RedisAdapter
from qtctl.config import Config, RiskSettings
from qtctl.daemons.risk_kernel import inputs as reader
from qtctl.daemons.risk_kernel import publish, state
from qtctl.daemons.risk_kernel.columns import Columns
from qtctl.daemons.risk_kernel.inputs import Batch
from qtctl.daemons.risk_kernel.kernel import BIT, Params, compute, exit_reason
from qtctl.daemons.risk_kernel.publish import PER_CHUNK, PER_EXIT, PER_PROPOSAL
from qtctl.daemons.risk_kernel.sweep import sweep
from qtctl.errors import ConfigError

log = logging.getLogger("qtctl.risk_kernel")
RESCAN_SEC = 10.0


class RiskKernel:
    """The daemon: one cycle per step, publishing only what changed or is due."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.adapter: RedisAdapter | None = None
        self.symbols: list[str] = []
        self.scanned_at = 0.0
        self.published: dict[str, tuple[str, float]] = {}  # symbol -> (digest, when)
        self.last = "starting"
        self.params = _params(config)
        self.swept = False
        self.seen: set[str] = set()  # the open positions of the last cycle Redis took

    def setup(self) -> None:
        """Connect to Redis."""
        self.close()
        self.adapter = RedisAdapter.connect(self.config.redis)

    def step(self) -> bool:
        """One cycle, then wait up to risk.poll_sec for the next; never more work queued."""
        started = time.monotonic()
        self.cycle()
        elapsed = time.monotonic() - started
        time.sleep(max(0.0, min(self.config.risk.poll_sec - elapsed, 1.0)))
        return False

    def cycle(self) -> dict[str, int]:
        """Read, compute, publish; returns the cycle's counters."""
        assert self.adapter is not None
        client, settings = self.adapter.client, self.config.risk
        now = reader.now()
        if not self.swept:  # proposals of positions that are gone, whoever published them
            sweep(client, settings)
            self.swept = True
        if now - self.scanned_at >= min(RESCAN_SEC, settings.publish_interval_sec):
            self.symbols = reader.scan_symbols(client, settings.position_prefix)
            self.scanned_at = now
        batch = reader.read(client, settings, self.symbols, now)
        counts = dict.fromkeys(("published", "exits", "rejected_invariant", "held"), 0)
        counts |= {"positions": len(batch.symbols) + len(batch.held)}
        counts["rejected_input"] = len(batch.held)
        for code in batch.held_codes.values():
            _add(counts, f"held:{code}")
        commands = [publish.hold(settings, s, why) for s, why in batch.held.items()]
        due: list[int] = []
        exits: list[int] = []
        first_exits: dict[int, str] = {}  # row -> reason, for exits not latched before
        proposals: Iterable[list[str]] = ()
        tail: list[str] = []
        if batch.inputs is not None:
            out = compute(batch.inputs, self.params)
            columns = Columns.of(batch.inputs, out, now)
            due, exits = self._due(batch, columns, now, counts, commands)
            memory = state.advance(batch.inputs, out, batch.priors, batch.idents, due + exits, now)
            writer = publish.Writer(
                settings, self._stream(), self.params.version, batch, columns, memory
            )
            proposals = writer.proposals(due)
            tail = [command for i in exits for command in writer.exit_now(i)]
            first_exits = {
                i: exit_reason(columns.bits[i])
                for i in exits
                if batch.priors[i] is None or not batch.priors[i].latched
            }
        still_open = set(batch.symbols) | set(batch.held)
        gone = sorted((self.seen | set(self.published)) - still_open)  # held-only ones too
        tail += [resp.command("DEL", settings.proposal_prefix + s) for s in gone]
        if gone:
            tail.append(resp.command("HDEL", settings.state_key, *gone))
        # No MULTI around the cycle: one would stall every other client for the whole EXEC
        # (9 ms for 1,000 positions). Each proposal is coherent on its own: the kernel's state
        # is written before its proposals, each hash before its log entry, an exit is one MULTI.
        replies = resp.send(client, chain([commands], proposals, [tail]))
        sent = (due, exits, gone, first_exits)
        errors = self._settle(batch, replies, len(commands), sent, now, counts)
        counts["held"] = counts["rejected_input"] + counts["rejected_invariant"]
        _count(client, settings.stats_key, counts, now)
        if errors:
            raise errors[0]
        self.seen = still_open
        self.last = _status(counts)
        return counts

    def _settle(
        self,
        batch: Batch,
        replies: list[Any],
        start: int,
        sent: tuple[list[int], list[int], list[str], dict[int, str]],
        now: float,
        counts: dict[str, int],
    ) -> list[Exception]:
        """Remember what Redis took; log what it refused (that stays due). Counts the rows."""
        due, exits, gone, first_exits = sent
        errors = [r for r in replies if isinstance(r, Exception)]
        offset = start
        taken: list[tuple[str, int, str]] = []
        for first in range(0, len(due), publish.CHUNK):
            memo = replies[offset]  # the chunk's kernel state: refused, its proposals count none
            offset += PER_CHUNK
            for i in due[first : first + publish.CHUNK]:
                size = PER_PROPOSAL
                taken.append(("published", i, _row_refused(memo, replies[offset : offset + size])))
                offset += size
        for i in exits:
            taken.append(("exits", i, _refused(replies[offset : offset + PER_EXIT])))
            offset += PER_EXIT
        for kind, i, refused in taken:
            if refused:
                log.error("%s: Redis refused the proposal: %s", batch.symbols[i], refused)
                continue
            self.published[batch.symbols[i]] = (batch.digests[i], now)
            counts[kind] += 1
            if kind == "exits" and i in first_exits:
                _add(counts, f"exit:{first_exits[i]}")
        for symbol, reply in zip(gone, replies[offset:], strict=False):
            if not isinstance(reply, Exception):
                self.published.pop(symbol, None)
        return errors

    def _due(
        self, batch: Batch, out: Columns, now: float, counts: dict[str, int], commands: list[str]
    ) -> tuple[list[int], list[int]]:
        """Rows to publish (changed, or not published within the interval), and exit-now rows;
        rows the kernel rejected are held instead."""
        due: list[int] = []
        exits: list[int] = []
        interval = self.config.risk.publish_interval_sec
        for i, symbol in enumerate(batch.symbols):
            if not out.valid[i]:
                code, why = _rejected(batch, out.bits[i], i)
                commands.append(publish.hold(self.config.risk, symbol, why))
                log.error("%s: proposal rejected (%s); the last valid one is kept", symbol, why)
                counts["rejected_invariant" if code == "invariant" else "rejected_input"] += 1
                _add(counts, f"held:{code}")
                continue
            digest, at = self.published.get(symbol, ("", 0.0))
            if digest == batch.digests[i] and now - at < interval:
                continue  # unchanged and not due
            (exits if out.exit_now[i] else due).append(i)
        return due, exits

    def _stream(self) -> str:
        return self.config.streams.prefix + self.config.risk.proposal_stream

    def status(self) -> str:
        """The last cycle in one line."""
        return self.last

    def reload(self, config: Config) -> None:
        """New parameters take effect on the next cycle."""
        self.config = config
        self.params = _params(config)

    def close(self) -> None:
        """Drop the connection pool."""
        if self.adapter is not None:
            self.adapter.close()
            self.adapter = None


def _rejected(batch: Batch, bits: int, i: int) -> tuple[str, str]:
    """Why the kernel rejected a row, as a counter code and a held reason."""
    if i in batch.problems:
        code: str = batch.problems[i][0]
        return code, batch.problems[i][1]
    if bits & BIT["invariant-failed"]:
        return "invariant", "invariant"
    return "invalid-input", "non-finite or out-of-range input"


def _row_refused(memo: Any, replies: list[Any]) -> str:
    if isinstance(memo, Exception):
        return f"kernel state: {memo}"
    return _refused(replies)


def _add(counts: dict[str, int], name: str) -> None:
    counts[name] = counts.get(name, 0) + 1


def _refused(replies: list[Any]) -> str:
    """The first error among one row's replies (inside its EXEC too), or ''."""
    for reply in replies:
        for item in reply if isinstance(reply, list) else [reply]:
            if isinstance(item, Exception):
                return str(item)
    return ""


def _count(client: Any, key: str, counts: dict[str, int], now: float) -> None:
    """The cycle's counters, by reason too (QT501 reads them), through redis-py: no hot path."""
    pipe = client.pipeline(transaction=False)
    pipe.hincrby(key, "cycles", 1)
    for name, value in counts.items():
        if value and name != "positions":
            pipe.hincrby(key, name, value)
    pipe.hset(key, mapping={"positions": counts["positions"], "last_cycle_at": f"{now:.3f}"})
    pipe.execute(raise_on_error=False)  # best effort: never fails a cycle Redis took


def _status(counts: dict[str, int]) -> str:
    if not counts["positions"]:
        return "no open positions: nothing to propose"
    return (
        f"{counts['positions']} positions: {counts['published']} proposals, "
        f"{counts['exits']} exit-now, {counts['rejected_input'] + counts['rejected_invariant']} "
        "held back"
    )


def params_of(r: RiskSettings) -> Params:
    """The kernel's parameters from `[risk]` (percent to fractions, the ROI table by age)."""
    roi = sorted(map(_roi, r.minimal_roi))
    return Params(
        min_stop=r.min_stop_pct / 100,
        min_tp=r.min_tp_pct / 100,
        min_trail=r.min_trail_pct / 100,
        min_distance=r.min_distance_pct / 100,
        liq_buffer=r.liquidation_buffer_pct / 100,
        stoploss=r.stoploss_pct / 100,
        trailing=r.trailing_stop,
        trailing_positive=r.trailing_stop_positive / 100,
        trailing_offset=r.trailing_stop_positive_offset / 100,
        trailing_only_offset=r.trailing_only_offset_is_reached,
        tp_policy=r.tp_policy,
        roi=tuple(roi),
        max_tp=r.max_tp_pct / 100,
        maintenance_margin=r.maintenance_margin_pct / 100,
    )


def _roi(item: str) -> tuple[float, float]:
    """`MINUTES=PCT` as (seconds, ratio); anything else is a config error naming the key."""
    minutes, sep, pct = item.partition("=")
    try:
        seconds, ratio = float(minutes) * 60, float(pct) / 100
    except ValueError:
        sep = ""
    if not sep or not (seconds >= 0 and ratio >= 0):
        raise ConfigError(f"expected MINUTES=PCT, got {item!r}", key="risk.minimal_roi")
    return seconds, ratio


def _params(config: Config) -> Params:
    return params_of(config.risk)


def create(config: Config) -> RiskKernel:
    """The daemon factory `qtctl run risk-kernel` uses."""
    return RiskKernel(config)
