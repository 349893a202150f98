"""`qtctl run risk-kernel`: read positions, compute all proposals at once, publish the sane ones.

Calculation only: it never places orders. Every interval (and as soon as a position's inputs
change) each open position gets a proposal hash `risk.proposal_prefix + SYMBOL` and an entry in
the append-only proposal stream. Rows the kernel rejects are not published: the last valid
proposal stays, flagged `trading_state=held` with the reason, and the rejection is counted in
`risk.stats_key` (doctor's QT501 reads the counters). No positions, no proposals: never synthetic.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from qtctl.adapters.redis_client import RedisAdapter
from qtctl.config import Config
from qtctl.daemons.risk_kernel import inputs as reader
from qtctl.daemons.risk_kernel.columns import Columns
from qtctl.daemons.risk_kernel.kernel import Params, compute

log = logging.getLogger("qtctl.risk_kernel")
RESCAN_SEC = 10.0
STOP_FIELDS = ("stop_loss", "take_profit", "proposed_sl", "proposed_tp", "trailing_stop")


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
        if now - self.scanned_at >= min(RESCAN_SEC, settings.publish_interval_sec):
            self.symbols = reader.scan_symbols(client, settings.position_prefix)
            self.scanned_at = now
        batch = reader.read(client, settings, self.symbols, now)
        counts = {"positions": len(batch.symbols) + len(batch.held), "published": 0, "exits": 0}
        counts["rejected_input"] = len(batch.held)
        counts["rejected_invariant"] = 0
        pipe = client.pipeline(transaction=True)  # readers never see half a cycle
        for symbol, why in batch.held.items():
            self._hold(pipe, symbol, why)
        if batch.inputs is not None:
            out = compute(batch.inputs, self.params)
            columns = Columns.of(batch.inputs, out, now)
            for i in range(len(batch.symbols)):
                kind = self._publish_row(pipe, batch, columns, i, now)
                if kind:
                    counts[kind] += 1
        self._forget_closed(pipe, set(batch.symbols) | set(batch.held))
        _count(pipe, settings.stats_key, counts, now)
        pipe.execute()
        self.last = _status(counts)
        return counts

    def _publish_row(self, pipe: Any, batch: Any, out: Columns, i: int, now: float) -> str:
        symbol, settings = batch.symbols[i], self.config.risk
        if not out.valid[i]:
            invalid = "non-finite or out-of-range input"
            why = invalid if "invalid-input" in out.reasons[i].split(",") else "invariant"
            self._hold(pipe, symbol, why)
            log.error("%s: proposal rejected (%s); the last valid one is kept", symbol, why)
            return "rejected_input" if why == invalid else "rejected_invariant"
        digest, at = self.published.get(symbol, ("", 0.0))
        if digest == batch.digests[i] and now - at < settings.publish_interval_sec:
            return ""  # unchanged and not due
        state = batch.states[i]
        seq = int(state.get("seq", "0") or 0) + 1
        fields = _fields(batch, out, i, seq, self.params.version)
        key = settings.proposal_prefix + symbol
        stream = self.config.streams.prefix + settings.proposal_stream
        entry = {"symbol": symbol, "payload": json.dumps(fields, separators=(",", ":"))}
        pipe.xadd(stream, entry, maxlen=settings.stream_maxlen, approximate=True)
        state = {"kernel_fingerprint": batch.fingerprints[i], "kernel_peak": out.peak[i]}
        if out.exit_now[i]:
            pipe.hdel(key, *STOP_FIELDS)  # an exit-now proposal carries no stop
        else:
            state |= {"kernel_sl": out.stop[i], "kernel_tp": out.take_profit[i]}
            fields |= {"exit_reason": "", "held_reason": ""}
        pipe.hset(key, mapping=fields | state)
        self.published[symbol] = (batch.digests[i], now)
        return "exits" if out.exit_now[i] else "published"

    def _hold(self, pipe: Any, symbol: str, why: str) -> None:
        key = self.config.risk.proposal_prefix + symbol
        pipe.hset(key, mapping={"trading_state": "held", "held_reason": why})

    def _forget_closed(self, pipe: Any, open_symbols: set[str]) -> None:
        """A closed position's proposal goes with it (no stale stop for a gone position)."""
        for symbol in [s for s in self.published if s not in open_symbols]:
            pipe.delete(self.config.risk.proposal_prefix + symbol)
            del self.published[symbol]

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


def _fields(batch: Any, out: Columns, i: int, seq: int, version: str) -> dict[str, str]:
    position, market = batch.positions[i], batch.markets[i]
    w = out.weights[i]
    fields = {
        "timestamp": out.timestamp,
        "computed_at_utc": out.computed_at,
        "position_side": out.side[i],
        "position_entry_price": position.get("entry_price", ""),
        "position_current_price": position.get("current_price", ""),
        "position_age_sec": position.get("age_sec", ""),
        "sigma": market.get("sigma", ""),
        "p_trend": w[0],
        "p_mr": w[1],
        "p_chop": w[2],
        "regime": out.regime[i],
        "weights": out.weights_json[i],
        "reasons": out.reasons[i],
        "reason_codes": out.reasons[i],
        "stop_dist_pct": out.stop_dist[i],
        "tp_dist_pct": out.tp_dist[i],
        "trail_gap_pct": out.trail_gap[i],
        "trailing_activation": out.activation[i],
        "inputs_digest": batch.digests[i],
        "params_version": version,
        "seq": str(seq),
    }
    if out.exit_now[i]:
        why = out.reasons[i].split(",")[-1]
        return fields | {"trading_state": "exit-now", "exit_now": "1", "exit_reason": why}
    stops = {
        "stop_loss": out.stop[i],
        "take_profit": out.take_profit[i],
        "proposed_sl": out.stop[i],
        "proposed_tp": out.take_profit[i],
        "trailing_stop": out.trailing[i],
        "trading_state": "active",
        "exit_now": "0",
    }
    return fields | stops


def _count(pipe: Any, key: str, counts: dict[str, int], now: float) -> None:
    pipe.hincrby(key, "cycles", 1)
    for name in ("published", "exits", "rejected_input", "rejected_invariant"):
        if counts[name]:
            pipe.hincrby(key, name, counts[name])
    pipe.hset(key, mapping={"positions": counts["positions"], "last_cycle_at": f"{now:.3f}"})


def _status(counts: dict[str, int]) -> str:
    if not counts["positions"]:
        return "no open positions: nothing to propose"
    return (
        f"{counts['positions']} positions: {counts['published']} proposals, "
        f"{counts['exits']} exit-now, {counts['rejected_input'] + counts['rejected_invariant']} "
        "held back"
    )


def _params(config: Config) -> Params:
    r = config.risk
    return Params(
        min_stop=r.min_stop_pct / 100,
        min_tp=r.min_tp_pct / 100,
        min_trail=r.min_trail_pct / 100,
        min_distance=r.min_distance_pct / 100,
        liq_buffer=r.liquidation_buffer_pct / 100,
    )


def create(config: Config) -> RiskKernel:
    """The daemon factory `qtctl run risk-kernel` uses."""
    return RiskKernel(config)
