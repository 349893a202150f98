"""Closed trades into the model: validate, join the entry context, learn; the exactly-once ledger.

The entry context of a closed trade comes, best first, from the decision it names
(`rl.decision_field`, the hash `quantum:rl:decision:<id>`), from the fleet's
`quantum:rl:state:<order_id>` link (keyed by the entry order id), or from the record itself.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import redis

from qtctl.adapters.redis_client import text
from qtctl.adapters.stream_archive import order
from qtctl.config_rl import RlSettings
from qtctl.daemons.rl_agent.commit import DeadLetter
from qtctl.daemons.rl_agent.policy import SizeModel
from qtctl.daemons.rl_agent.records import (
    Experience,
    Rejected,
    SourceMap,
    experience,
    reward_experience,
)


@dataclass
class Ledger:
    """What the model contains and what awaits the commit, per stream."""

    streams: list[str]
    counters: Counter[str] = field(default_factory=Counter)
    positions: dict[str, str] = field(default_factory=dict)  # the last ID the model contains
    to_ack: dict[str, list[str]] = field(default_factory=dict)
    dead: dict[str, list[DeadLetter]] = field(default_factory=dict)
    covered: dict[str, set[str]] = field(default_factory=dict)  # learned before a crash
    queued: dict[str, set[str]] = field(default_factory=dict)  # mirrors to_ack
    fresh: set[str] = field(default_factory=set)  # trade ids learned since the last commit

    def __post_init__(self) -> None:
        for stream in self.streams:
            self.positions.setdefault(stream, "0-0")
            for table, make in ((self.to_ack, list), (self.dead, list)):
                table.setdefault(stream, make())
            for sets in (self.covered, self.queued):
                sets.setdefault(stream, set())

    def take(self, stream: str, entry_id: str) -> bool:
        """Queue an entry for acknowledgement; False when it needs no processing."""
        if entry_id in self.queued[stream]:
            return False  # read twice in one session (a claim racing a read): once is enough
        self.queued[stream].add(entry_id)
        self.to_ack[stream].append(entry_id)
        self.positions[stream] = max(self.positions[stream], entry_id, key=order)
        return entry_id not in self.covered[stream]  # covered: in the model already

    def reject(self, stream: str, entry_id: str, why: Rejected) -> None:
        self.counters["rejected"] += 1
        self.counters[f"rejected:{why.reason}"] += 1
        self.dead[stream].append(DeadLetter(entry_id, why.reason, why.detail[:500]))

    def waiting(self) -> int:
        return sum(map(len, self.to_ack.values()))

    def state(self) -> dict[str, Any]:
        return {
            "counters": dict(self.counters),
            "positions": dict(self.positions),
            "unacked": {k: list(v) for k, v in self.to_ack.items()},
            "dead": {
                k: [[d.entry_id, d.reason, d.detail] for d in v] for k, v in self.dead.items()
            },
            "fresh": sorted(self.fresh),
        }

    def load(self, state: dict[str, Any]) -> None:
        self.counters = Counter({k: int(v) for k, v in state["counters"].items()})
        self.positions.update({str(k): str(v) for k, v in state.get("positions", {}).items()})
        for key, ids in (state.get("unacked") or {}).items():
            if str(key) in self.covered:
                self.covered[str(key)] = {str(i) for i in ids}
        for key, letters in (state.get("dead") or {}).items():
            if str(key) in self.dead:  # written by the next commit, if not acknowledged yet
                self.dead[str(key)] = [DeadLetter(str(a), str(b), str(c)) for a, b, c in letters]

    def committed(self) -> None:
        for table in (self.to_ack, self.dead):
            for pending in table.values():
                pending.clear()
        for sets in (self.queued, self.covered):
            for ids in sets.values():
                ids.clear()
        self.fresh.clear()


@dataclass
class Learner:
    """Turns a batch of entries into experiences (or dead letters) and learns them."""

    settings: RlSettings
    sources: dict[str, SourceMap]
    reward_scales: dict[str, tuple[str, float]]
    reward_stream: str
    model: SizeModel
    ledger: Ledger
    recent: list[tuple[float, float]] = field(default_factory=list)  # (policy, always-1) utility
    closes: dict[str, tuple[dict[str, float], str]] = field(default_factory=dict)  # by symbol

    def process(self, client: redis.Redis, stream: str, entries: list[Any]) -> int:
        """Validate, deduplicate and learn a batch; returns how many were learned."""
        parsed = []
        for raw_id, raw_fields in entries:
            entry_id = text(raw_id)
            if self.ledger.take(stream, entry_id):
                parsed.append((entry_id, {text(k): text(v) for k, v in (raw_fields or {}).items()}))
        contexts = (
            self._contexts(client, [f for _, f in parsed]) if stream != self.reward_stream else []
        )
        valid: list[tuple[str, Experience]] = []
        for index, (entry_id, fields) in enumerate(parsed):
            try:
                valid.append((entry_id, self._experience(stream, fields, contexts, index)))
            except Rejected as why:
                self.ledger.reject(stream, entry_id, why)
        return self._learn(client, stream, valid)

    def _experience(
        self, stream: str, fields: dict[str, str], contexts: list[dict[str, Any]], index: int
    ) -> Experience:
        if stream == self.reward_stream:
            return reward_experience(fields, self.reward_scales)
        s = self.settings
        return experience(
            fields,
            self.sources,
            context=contexts[index],
            tolerance_pct=s.pnl_tolerance_pct,
            max_abs_pnl_pct=s.max_abs_pnl_pct,
            extra=self.extra,
        )

    @property
    def extra(self) -> tuple[str, ...]:
        """Numeric fields beyond the standard ones: extra_features and binned ones."""
        names = [*self.settings.extra_features, *(b.field for b in self.model.bins)]
        standard = ("confidence", "volatility", "leverage")
        return tuple(dict.fromkeys(n for n in names if n not in standard))

    def _contexts(self, client: redis.Redis, records: list[dict[str, str]]) -> list[dict[str, Any]]:
        """The entry context of each record: its decision's features, else the state link."""
        s = self.settings
        pipe = client.pipeline(transaction=False)
        for fields in records:
            decision = fields.get(s.decision_field, "")
            pipe.hget(s.decision_prefix + decision, "features") if decision else pipe.echo("")
            order_id = fields.get("order_id", "")
            pipe.get(s.state_prefix + order_id) if order_id else pipe.echo("")
        replies = pipe.execute(raise_on_error=False) if records else []
        out = []
        for i in range(len(records)):
            ctx: dict[str, Any] = {}
            for raw in (replies[2 * i + 1], replies[2 * i]):  # the state link, then the decision
                ctx.update(_json_object(raw))
            out.append(ctx)
        return out

    def _learn(self, client: redis.Redis, stream: str, valid: list[tuple[str, Experience]]) -> int:
        s = self.settings
        ids = [e.trade_id for _, e in valid]
        seen: Any = client.smismember(s.seen_key, ids) if ids else []
        contexts: list[dict[str, float]] = []
        rets: list[float] = []
        served = iter(self.model.multipliers([e.context for _, e in valid]).tolist())
        for (entry_id, exp), known in zip(valid, seen, strict=True):
            multiplier = next(served)  # as the model stood before this batch: an honest curve
            if known or exp.trade_id in self.ledger.fresh:
                self.ledger.reject(stream, entry_id, Rejected("duplicate", f"trade {exp.trade_id}"))
                continue
            if not math.isfinite(exp.ret):
                self.ledger.reject(stream, entry_id, Rejected("no-return", "no price return"))
                continue
            self.ledger.fresh.add(exp.trade_id)
            self.ledger.counters["experiences"] += 1
            self.recent.append(
                (
                    self.model.utility_of(multiplier, exp.ret),
                    self.model.utility_of(1.0, exp.ret),
                )
            )
            contexts.append(exp.context)
            rets.append(exp.ret)
            self.closes[exp.symbol] = (exp.context, f"{stream} {entry_id}")
        del self.recent[:-1000]
        self.model.learn(contexts, rets)
        return len(rets)


def _json_object(raw: Any) -> dict[str, Any]:
    if not raw or isinstance(raw, Exception):
        return {}
    try:
        value = json.loads(text(raw))
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
