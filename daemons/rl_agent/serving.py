"""Decisions per trade, the per-symbol recommendation, and the agent's statistics.

The executor asks before it opens a position (`XADD quantum:stream:rl.sizing.request` with
`decision_id`, `symbol` and the entry context); the answer is the hash
`quantum:rl:decision:<decision_id>` (multiplier, the exact probability it was drawn with,
policy_version, reason, features, expires) with a TTL, and an entry in `rl.decisions`.
"""

from __future__ import annotations

import json
import math
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import redis

from qtctl.adapters.redis_client import text
from qtctl.config_rl import RlSettings
from qtctl.daemons.rl_agent.policy import Choice, SizeModel
from qtctl.daemons.rl_agent.records import entry_context
from qtctl.stream_ids import id_ms

LOG_MAXLEN = 100_000


@dataclass
class Server:
    """Answers sizing requests from the current model."""

    settings: RlSettings
    prefix: str  # streams.prefix
    model: SizeModel
    extra: tuple[str, ...]
    rng: random.Random
    counters: Counter[str]
    served: Counter[str] = field(default_factory=Counter)
    latest: dict[str, tuple[dict[str, float], str]] = field(default_factory=dict)  # by symbol

    def answer(self, client: redis.Redis, stream: str, group: str, entries: list[Any]) -> None:
        """One pipeline: every decision hash, its TTL, the log entry, and the XACKs."""
        s, now = self.settings, time.time()
        pipe = client.pipeline(transaction=False)
        for raw_id, raw_fields in entries:
            entry_id = text(raw_id)
            fields = {text(k): text(v) for k, v in (raw_fields or {}).items()}
            pipe.xack(stream, group, entry_id)
            decision_id = fields.get("decision_id", "")
            if not decision_id or len(decision_id) > 200:
                self.counters["requests_invalid"] += 1
                continue
            if now - id_ms(entry_id) / 1000 > s.decision_valid_sec:
                self.counters["requests_expired"] += 1  # asked before a restart: too late now
                continue
            self._decide(pipe, decision_id, fields, now)
        pipe.execute()

    def _decide(self, pipe: Any, decision_id: str, fields: dict[str, str], now: float) -> None:
        s = self.settings
        context = entry_context(fields, {}, self.extra)
        choice = self.model.choose(context)
        multiplier, probability, reason = self.draw(choice)
        features = {**context, **{k: fields[k] for k in ("side", "regime") if fields.get(k)}}
        decision = {
            "decision_id": decision_id,
            "symbol": fields.get("symbol", ""),
            "multiplier": f"{multiplier:g}",
            "probability": f"{probability:.17g}",
            "policy_version": str(self.model.updates),
            "reason": reason,
            "evidence": f"{choice.evidence:.0f}",
            "features": json.dumps(features, sort_keys=True),
            "decided_at": f"{now:.6f}",
            "expires": f"{now + s.decision_valid_sec:.3f}",
        }
        key = s.decision_prefix + decision_id
        pipe.hset(key, mapping=decision)
        pipe.expire(key, s.decision_ttl_sec)
        pipe.xadd(self.prefix + s.decision_log, decision, maxlen=LOG_MAXLEN, approximate=True)
        self.counters["decisions"] += 1
        self.served[f"{multiplier:g}"] += 1
        if decision["symbol"]:
            self.latest[decision["symbol"]] = (context, f"request {decision_id} at {now:.3f}")

    def draw(self, choice: Choice) -> tuple[float, float, str]:
        """(multiplier, the exact probability it was drawn with, reason)."""
        eps = self.settings.explore
        if choice.reason != "model" or eps <= 0:
            return choice.multiplier, 1.0, choice.reason
        actions = self.model.actions
        drawn = self.rng.choice(actions) if self.rng.random() < eps else choice.multiplier
        probability = eps / len(actions) + (1 - eps) * (drawn == choice.multiplier)
        return drawn, probability, "model" if drawn == choice.multiplier else "explore"

    def recommend(self, pipe: Any, closes: dict[str, tuple[dict[str, float], str]]) -> int:
        """Per symbol: the choice for its current context (its newest request, else its newest
        closed trade), and which context that was."""
        now = time.time()
        symbols = {**closes, **self.latest}
        for symbol, (context, source) in symbols.items():
            choice = self.model.choose(context)
            pipe.hset(
                self.settings.recommendation_prefix + symbol,
                mapping={
                    "multiplier": f"{choice.multiplier:g}",
                    "probability": "1",
                    "reason": choice.reason,
                    "model_version": str(self.model.updates),
                    "features": json.dumps(context, sort_keys=True),
                    "context_from": source,
                    "updated_at": f"{now:.3f}",
                },
            )
        return len(symbols)


def stats_fields(
    counters: Counter[str],
    model: SizeModel,
    recent: list[tuple[float, float]],
    served: Counter[str],
) -> dict[str, Any]:
    """The stats hash: counters, the prequential utility (policy and always-1.0), the table."""
    policy = np.asarray([p for p, _ in recent] or [0.0])
    baseline = np.asarray([b for _, b in recent] or [0.0])
    total = sum(served.values())
    entropy = -sum(n / total * math.log(n / total) for n in served.values()) if total else 0.0
    table = Counter(f"{c.multiplier:g}" for c in model.choices)
    return {
        "experiences": counters["experiences"],
        "rejected": counters["rejected"],
        "decisions": counters["decisions"],
        "requests_expired": counters["requests_expired"],
        "updates": model.updates,
        "model_version": model.updates,
        **_window(policy, ""),
        **_window(policy[-100:], "_100"),
        "baseline_mean": f"{float(baseline.mean()):.8g}",
        "policy_entropy": f"{entropy:.6f}",
        "multipliers": json.dumps(dict(sorted(table.items()))),
        "served": json.dumps(dict(sorted(served.items()))),
        "cold_start_cells": sum(c.reason == "cold-start" for c in model.choices),
        "last_update_time": f"{time.time():.3f}",
        "rejects": json.dumps({k.split(":", 1)[1]: v for k, v in counters.items() if ":" in k}),
    }


def _window(values: np.ndarray, suffix: str) -> dict[str, str]:
    """Mean/std/min/max of the realised utility of the served policy."""
    return {
        f"reward_mean{suffix}": f"{float(values.mean()):.8g}",
        f"reward_std{suffix}": f"{float(values.std()):.8g}",
        f"reward_min{suffix}": f"{float(values.min()):.8g}",
        f"reward_max{suffix}": f"{float(values.max()):.8g}",
    }
