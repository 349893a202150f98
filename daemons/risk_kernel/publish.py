"""A cycle's writes as RESP text (`qtctl.adapters.resp`): one template per command shape and one
per payload, one `%` format each per published row, instead of redis-py's packing of about 70
arguments and a dict and a `json.dumps` for each proposal (`bench/resp_ab.py` measures both)."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING

from qtctl.adapters import resp
from qtctl.adapters.resp import Template
from qtctl.daemons.risk_kernel.columns import Columns
from qtctl.daemons.risk_kernel.inputs import Batch
from qtctl.daemons.risk_kernel.kernel import exit_reason

if TYPE_CHECKING:
    from qtctl.config import RiskSettings

CHUNK = 200  # rows per write: Redis runs one chunk while the next is formatted
PER_CHUNK, PER_PROPOSAL, PER_EXIT = 1, 2, 6  # commands (and replies) per chunk and per row
STOP_FIELDS = ("stop_loss", "take_profit", "proposed_sl", "proposed_tp", "trailing_stop")
# The stream entry records the decision and what it was made from; the hash adds the old
# publisher's names and the kernel's context for readers of the current proposal.
RECORD = frozenset(
    (
        "timestamp",
        "position_side",
        "position_current_price",
        "p_trend",
        "p_mr",
        "p_chop",
        "regime",
        "reasons",
        "stop_loss",
        "take_profit",
        "trailing_stop",
        "trailing_activation",
        "inputs_digest",
        "params_version",
        "seq",
        "trading_state",
        "exit_now",
        "exit_reason",
        "exit_price",
        "exit_at",
    )
)
Fields = dict[str, str | list[str]]  # name -> a column (one value per row) or the cycle's constant


class Writer:
    """The commands that publish a cycle's proposals."""

    def __init__(
        self,
        settings: RiskSettings,
        stream: str,
        version: str,
        batch: Batch,
        cols: Columns,
        memory: Mapping[int, str],
    ):
        self.settings = settings
        self.stream = stream
        self.batch = batch
        self.cols = cols
        self.version = version
        self.memory = memory  # row -> the kernel's state after this proposal

    def proposals(self, rows: list[int], chunk: int = CHUNK) -> Iterator[list[str]]:
        """Per chunk, the kernel's state first (one HSET: a stop is never published ahead of the
        ratchet that keeps it), then HSET and XADD for each active proposal, by template, in
        chunks that Redis runs while the next is built."""
        for start in range(0, len(rows), chunk):
            part = rows[start : start + chunk]
            yield [self._memory(part), *self._proposals(part)]

    def _memory(self, rows: list[int]) -> str:
        symbols, memory = self.batch.symbols, self.memory
        pairs = [v for i in rows for v in (symbols[i], memory[i])]
        return resp.command("HSET", self.settings.state_key, *pairs)

    def _proposals(self, rows: list[int]) -> list[str]:
        full = len(rows) == len(self.batch.symbols)
        fields = {k: _pick(v, rows, full) for k, v in (self._base() | self._stops()).items()}
        symbols = _pick(self.batch.symbols, rows, full)
        state: Fields = {"exit_reason": "", "exit_price": "", "exit_at": "", "held_reason": ""}
        assert isinstance(symbols, list)
        xadd = Template("XADD", self.stream, *self._trim(), "symbol", None, "payload", None)
        keys = [self.settings.proposal_prefix + s for s in symbols]
        record = {k: v for k, v in fields.items() if k in RECORD}
        hsets = _hset_rows(keys, fields | state)
        xadds = xadd.rows(symbols, resp.json_rows(record, len(symbols)))
        return [command for pair in zip(hsets, xadds, strict=True) for command in pair]

    def exit_now(self, i: int) -> list[str]:
        """An exit-now proposal: no stop at all (never one on the wrong side), and why; once
        latched it keeps its first reason, price and time. Its six commands are one MULTI, so
        no reader sees the stops gone without the exit, nor the exit without its latch."""
        base = {k: v if isinstance(v, str) else v[i] for k, v in self._base().items()}
        prior = self.batch.priors[i]
        if prior is not None and prior.latched:
            why, price, at = prior.exit_reason, prior.exit_price, prior.exit_at
        else:
            why, price, at = exit_reason(self.cols.bits[i]), self.cols.price[i], base["timestamp"]
        exit_fields = {"exit_reason": why, "exit_price": price, "exit_at": at}
        fields = base | {"trading_state": "exit-now", "exit_now": "1"} | exit_fields
        payload = json.dumps(fields, separators=(",", ":"))
        symbol = self.batch.symbols[i]
        key = self.settings.proposal_prefix + symbol
        pairs = [x for kv in (fields | {"held_reason": ""}).items() for x in kv]
        return [
            resp.command("MULTI"),
            resp.command("HDEL", key, *STOP_FIELDS),
            resp.command("HSET", key, *pairs),
            resp.command("HSET", self.settings.state_key, symbol, self.memory[i]),
            resp.command("XADD", self.stream, *self._trim(), "symbol", symbol, "payload", payload),
            resp.command("EXEC"),
        ]

    def _trim(self) -> tuple[str, ...]:
        return ("MAXLEN", "~", str(self.settings.stream_maxlen), "*")

    def _base(self) -> Fields:
        b, c = self.batch, self.cols
        return {
            "timestamp": c.timestamp,
            "computed_at_utc": c.computed_at,
            "position_side": c.side,
            "position_entry_price": b.entry_text,
            "position_current_price": b.price_text,
            "position_identity": b.idents,
            "position_age_sec": b.age_text,
            "sigma": b.sigma_text,
            "p_trend": c.p_trend,
            "p_mr": c.p_mr,
            "p_chop": c.p_chop,
            "regime": c.regime,
            "weights": c.weights_json,
            "reasons": c.reasons,
            "reason_codes": c.reasons,
            "stop_dist_pct": c.stop_dist,
            "tp_dist_pct": c.tp_dist,
            "trail_gap_pct": c.trail_gap,
            "trailing_activation": c.activation,
            "inputs_digest": b.digests,
            "params_version": self.version,
            "seq": [str(s + 1) for s in b.seq],
        }

    def _stops(self) -> Fields:
        c = self.cols
        return {
            "stop_loss": c.stop,
            "take_profit": c.take_profit,
            "proposed_sl": c.stop,
            "proposed_tp": c.take_profit,
            "trailing_stop": c.trailing,
            "trading_state": "active",
            "exit_now": "0",
        }


def hold(settings: RiskSettings, symbol: str, why: str) -> str:
    """Keep the last valid proposal, flagged held with the reason."""
    key = settings.proposal_prefix + symbol
    return resp.command("HSET", key, "trading_state", "held", "held_reason", why)


def _pick(value: str | list[str], rows: list[int], full: bool) -> str | list[str]:
    if isinstance(value, str) or full:
        return value
    if rows[-1] - rows[0] == len(rows) - 1:  # a run of rows (the usual chunk): one slice
        return value[rows[0] : rows[-1] + 1]
    return [value[i] for i in rows]


def _hset_rows(keys: list[str], fields: Fields) -> list[str]:
    shape: list[str | None] = ["HSET", None]
    columns = [keys]
    for name, value in fields.items():
        shape.append(name)
        if isinstance(value, str):
            shape.append(value)
        else:
            shape.append(None)
            columns.append(value)
    return Template(*shape).rows(*columns)
