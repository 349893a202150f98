"""`qtctl run rl-agent`: learn size multipliers from validated closed trades, resume exactly.

Exactness: entries are read through a consumer group with a stable consumer name and
acknowledged only when a checkpoint that already contains them is on disk. The checkpoint
records the entries it learned but has not acknowledged yet, and the absolute counters; the
commit that follows writes those counters to the stats hash and XACKs the entries in one
server-side call. After a crash:
- pending entries the checkpoint lists are already in the model: they are acknowledged, not
  counted again;
- every other pending entry (our own, or one claimed from a dead consumer, whatever its ID) is
  learned again from the last checkpoint.
So no experience is counted twice or lost.
"""

from __future__ import annotations

import json
import logging
import socket
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from qtctl.adapters.redis_client import RedisAdapter, text
from qtctl.adapters.stream_archive import order
from qtctl.config import Config
from qtctl.daemon.runtime import FatalDaemonError
from qtctl.daemons.rl_agent import checkpoint
from qtctl.daemons.rl_agent.policy import Policy
from qtctl.daemons.rl_agent.records import (
    Rejected,
    SourceMap,
    experience,
    parse_reward_scales,
    reward_experience,
    source_maps,
)
from qtctl.daemons.rl_agent.rewards import Shaper

log = logging.getLogger("qtctl.rl_agent")
# KEYS: stats hash, seen-trades set, then the streams.
# ARGV: group, then per stream: n, ids...; then n_seen, trade ids...; then counter field/values.
COMMIT = """
local at, acked = 2, 0
for k = 3, #KEYS do
  local n = tonumber(ARGV[at])
  for i = at + 1, at + n, 500 do
    acked = acked + redis.call('XACK', KEYS[k], ARGV[1], unpack(ARGV, i, math.min(i + 499, at + n)))
  end
  at = at + n + 1
end
local m = tonumber(ARGV[at])
for i = at + 1, at + m, 500 do
  redis.call('SADD', KEYS[2], unpack(ARGV, i, math.min(i + 499, at + m)))
end
at = at + m + 1
if #ARGV >= at then redis.call('HSET', KEYS[1], unpack(ARGV, at, #ARGV)) end
return acked
"""


class RlAgent:
    """The daemon: read, validate, learn in batches, checkpoint-then-acknowledge."""

    def __init__(self, config: Config) -> None:
        self.config = config
        s = config.rl
        self.stream = config.streams.prefix + s.trade_stream
        self.reward_stream = config.streams.prefix + s.reward_stream
        self.streams = [self.stream, self.reward_stream]
        self.reward_scales = parse_reward_scales(s.reward_sources)
        self.consumer = s.consumer or socket.gethostname()
        self.sources = parse_sources(s.sources)
        actions = tuple(
            float(m) for m in s.multipliers if s.min_multiplier <= float(m) <= s.max_multiplier
        )
        if not actions:
            raise FatalDaemonError("no rl.multipliers within rl.min/max_multiplier")
        self.policy = Policy(actions, seed=s.seed, lr=s.learning_rate)
        self.shaper = Shaper(s.reward, s.r_scale, s.drawdown_penalty)
        self.adapter: RedisAdapter | None = None
        self.counters: Counter[str] = Counter()
        # per stream: the last ID the model contains, and what awaits acknowledgement
        self.positions = {k: "0-0" for k in self.streams}
        self.to_ack: dict[str, list[str]] = {k: [] for k in self.streams}
        # entries the loaded checkpoint learned but could not acknowledge before a crash
        self.covered: dict[str, set[str]] = {k: set() for k in self.streams}
        self.queued: dict[str, set[str]] = {k: set() for k in self.streams}  # mirrors to_ack
        self.fresh: set[str] = set()  # trade ids learned since the last commit
        self.draining = True  # our own pending entries come first after a start
        self.drain_from = dict.fromkeys(self.streams, "0")
        self.since_checkpoint = 0
        self.checkpointed_at = time.monotonic()
        self.stats_at = 0.0
        self.contexts: dict[str, np.ndarray] = {}
        self.recent: list[float] = []

    # lifecycle -----------------------------------------------------------------------------
    def setup(self) -> None:
        """Connect, create the group, and load the newest good checkpoint."""
        self.close_connection()
        settings = self.config.rl
        self.adapter = RedisAdapter.connect(
            self.config.redis, decode=False, block_sec=settings.block_ms / 1000
        )
        client = self.adapter.client
        for stream in self.streams:
            try:
                client.xgroup_create(stream, settings.group, id=settings.start_id, mkstream=True)
                log.info("created group %s on %s at %s", settings.group, stream, settings.start_id)
            except Exception as exc:
                if "BUSYGROUP" not in str(exc):
                    raise
        state, path = checkpoint.load_latest(Path(settings.model_dir))
        if state is not None:
            self.policy.load(state["policy"])
            if "shaper" in state:
                self.shaper.load(state["shaper"])
            self.counters = Counter({k: int(v) for k, v in state["counters"].items()})
            saved = state.get("positions") or {self.stream: state.get("position", "0-0")}
            self.positions.update({str(k): str(v) for k, v in saved.items()})
            for key, ids in (state.get("unacked") or {}).items():
                if str(key) in self.covered:
                    self.covered[str(key)] = {str(i) for i in ids}
            fresh = [str(t) for t in state.get("fresh", [])]
            if fresh:  # a crash after the checkpoint, before its commit: remember them now
                client.sadd(settings.seen_key, *fresh)
            log.info(
                "resumed from %s: %d experiences, positions %s",
                path,
                self.counters["experiences"],
                self.positions,
            )
        self.draining = True
        self.drain_from = dict.fromkeys(self.streams, "0")

    def step(self) -> bool:
        """One batch: our pending entries first, then new ones, then orphans of dead peers."""
        assert self.adapter is not None
        client, s = self.adapter.client, self.config.rl
        if self.draining:  # our pending entries, walking forward from the oldest
            reply = client.xreadgroup(s.group, self.consumer, self.drain_from, count=s.batch)
            batches = {text(k): v for k, v in reply or [] if v}
            for stream, entries in batches.items():
                self.drain_from[stream] = text(entries[-1][0])
            if not batches:
                self.draining = False
        else:
            reply = client.xreadgroup(
                s.group,
                self.consumer,
                dict.fromkeys(self.streams, ">"),
                count=s.batch,
                block=s.block_ms,
            )
            batches = {text(k): v for k, v in reply or [] if v}
            for stream in self.streams:
                if len(batches.get(stream, [])) < s.batch:
                    batches[stream] = batches.get(stream, []) + self._claim_orphans(client, stream)
        for stream, entries in batches.items():
            self._process(client, stream, entries)
        now = time.monotonic()
        due = now - self.checkpointed_at >= s.checkpoint_every_sec
        waiting = any(self.to_ack.values())
        if waiting and (self.since_checkpoint >= s.checkpoint_every or due):
            self.commit()
        if now - self.stats_at >= s.stats_every_sec:
            self.publish_stats()
        return any(len(v) >= s.batch for v in batches.values())

    def _claim_orphans(self, client: Any, stream: str) -> list[Any]:
        s = self.config.rl
        reply = client.xautoclaim(
            stream,
            s.group,
            self.consumer,
            min_idle_time=int(s.claim_idle_sec * 1000),
            start_id="0-0",
            count=s.batch,
        )
        claimed = [e for e in reply[1] if e and e[1] is not None]
        if claimed:
            log.info("claimed %d entries orphaned by a dead consumer", len(claimed))
        return claimed

    # the work ------------------------------------------------------------------------------
    def _process(self, client: Any, stream: str, entries: list[Any]) -> None:
        s = self.config.rl
        features, multipliers, pnls, rs = [], [], [], []
        dead = client.pipeline(transaction=False)
        valid: list[tuple[str, Any]] = []
        for raw_id, raw_fields in entries:
            entry_id = text(raw_id)
            if entry_id in self.queued[stream]:
                continue  # read twice in one session (a claim racing a read): once is enough
            self.queued[stream].add(entry_id)
            self.to_ack[stream].append(entry_id)
            if entry_id in self.covered[stream]:
                continue  # already in the model (crash between checkpoint and acknowledgement)
            fields = {text(k): text(v) for k, v in (raw_fields or {}).items()}
            try:
                if stream == self.reward_stream:
                    exp = reward_experience(fields, self.reward_scales)
                else:
                    exp = experience(
                        fields,
                        self.sources,
                        tolerance_pct=s.pnl_tolerance_pct,
                        max_abs_pnl_pct=s.max_abs_pnl_pct,
                    )
            except Rejected as why:
                self._reject(dead, entry_id, why)
            else:
                valid.append((entry_id, exp))
            self.positions[stream] = max(self.positions[stream], entry_id, key=order)
        seen = client.smismember(s.seen_key, [e.trade_id for _, e in valid]) if valid else []
        for (entry_id, exp), known in zip(valid, seen, strict=True):
            if known or exp.trade_id in self.fresh:
                self._reject(dead, entry_id, Rejected("duplicate", f"trade {exp.trade_id}"))
                continue
            self.fresh.add(exp.trade_id)
            self.counters["experiences"] += 1
            features.append(exp.features)
            multipliers.append(exp.multiplier)
            pnls.append(exp.pnl_pct)
            rs.append(exp.r_multiple)
            self.contexts[exp.symbol] = np.asarray(exp.features, dtype=np.float32)
        dead.execute()
        if features:
            rewards = self.shaper.rewards(np.asarray(pnls), np.asarray(rs))
            self.policy.learn(np.asarray(features), np.asarray(multipliers), rewards)
            self.since_checkpoint += 1
            self.recent = (self.recent + rewards.tolist())[-1000:]

    def _reject(self, dead: Any, entry_id: str, why: Rejected) -> None:
        self.counters["rejected"] += 1
        self.counters[f"rejected:{why.reason}"] += 1
        dead.xadd(
            self.config.streams.prefix + self.config.rl.dead_letter,
            {"source_id": entry_id, "reason": why.reason, "detail": why.detail[:500]},
            maxlen=100_000,
            approximate=True,
        )

    def commit(self) -> None:
        """Checkpoint (with counters and position), then XACK and publish the counters."""
        assert self.adapter is not None
        s = self.config.rl
        payload = {
            "policy": self.policy.state(),
            "shaper": self.shaper.state(),
            "counters": dict(self.counters),
            "positions": dict(self.positions),
            "unacked": {k: list(v) for k, v in self.to_ack.items()},
            "fresh": sorted(self.fresh),
            "saved_at": time.time(),
        }
        try:
            checkpoint.save(Path(s.model_dir), self.policy.updates, payload, s.keep_checkpoints)
        except OSError as exc:  # e.g. disk full: keep learning, acknowledge nothing yet
            log.error(
                "%s; %d entries stay pending until a checkpoint succeeds",
                exc,
                sum(map(len, self.to_ack.values())),
            )
            self.checkpointed_at = time.monotonic()
            return
        counters = {k: str(v) for k, v in self.counters.items()}
        counters["model_version"] = str(self.policy.updates)
        counters["updates"] = str(self.policy.updates)
        flat = [x for kv in counters.items() for x in kv]
        acks: list[str | int] = []
        for stream in self.streams:
            acks += [len(self.to_ack[stream]), *self.to_ack[stream]]
        self.adapter.client.eval(
            COMMIT,
            2 + len(self.streams),
            s.stats_key,
            s.seen_key,
            *self.streams,
            s.group,
            *acks,
            len(self.fresh),
            *sorted(self.fresh),
            *flat,
        )
        for pending in self.to_ack.values():
            pending.clear()
        for queued in self.queued.values():
            queued.clear()
        for covered in self.covered.values():
            covered.clear()
        self.fresh.clear()
        self.since_checkpoint = 0
        self.checkpointed_at = time.monotonic()

    def publish_stats(self) -> None:
        """The stats hash and stream, and a recommendation per symbol seen."""
        assert self.adapter is not None
        s, now = self.config.rl, time.time()
        rewards = np.asarray(self.recent) if self.recent else np.zeros(1)
        symbols = sorted(self.contexts)
        pipe = self.adapter.client.pipeline(transaction=False)
        entropy, spread = 0.0, {}
        if symbols:
            x = np.stack([self.contexts[k] for k in symbols])
            chosen, probs = self.policy.recommend(x)
            entropy = float(-(probs * np.log(probs + 1e-12)).sum(axis=1).mean())
            values, counts = np.unique(chosen, return_counts=True)
            spread = {f"{m:g}": int(n) for m, n in zip(values, counts, strict=True)}
            log_stream = self.config.streams.prefix + s.recommendation_log
            for symbol, mult, p in zip(symbols, chosen.tolist(), probs.tolist(), strict=True):
                index = self.policy.actions.index(mult) if mult in self.policy.actions else -1
                pipe.xadd(  # the probability of each served action, for offline evaluation
                    log_stream,
                    {
                        "symbol": symbol,
                        "multiplier": f"{mult:g}",
                        "action_prob": f"{p[index]:.6f}" if index >= 0 else "",
                        "model_version": self.policy.updates,
                        "features": json.dumps([round(float(v), 6) for v in self.contexts[symbol]]),
                    },
                    maxlen=100_000,
                    approximate=True,
                )
                pipe.hset(
                    s.recommendation_prefix + symbol,
                    mapping={
                        "multiplier": f"{mult:g}",
                        "action_probs": json.dumps(
                            dict(zip(map(str, self.policy.actions), p, strict=True))
                        ),
                        "model_version": self.policy.updates,
                        "updated_at": f"{now:.3f}",
                    },
                )
        stats = {
            "experiences": self.counters["experiences"],
            "rejected": self.counters["rejected"],
            "updates": self.policy.updates,
            "model_version": self.policy.updates,
            "reward_mean": f"{float(rewards.mean()):.6f}",
            "reward_std": f"{float(rewards.std()):.6f}",
            "reward_min": f"{float(rewards.min()):.6f}",
            "reward_max": f"{float(rewards.max()):.6f}",
            **_window(rewards[-100:], "100"),
            "policy_entropy": f"{entropy:.6f}",
            "multipliers": json.dumps(spread),
            "recommendations_published": len(symbols),
            "last_update_time": f"{now:.3f}",
            "rejects": json.dumps(
                {k.split(":", 1)[1]: v for k, v in self.counters.items() if ":" in k}
            ),
        }
        pipe.hset(s.stats_key, mapping=stats)
        pipe.xadd(self.config.streams.prefix + s.stats_stream, stats, maxlen=10_000)
        pipe.execute()
        self.stats_at = time.monotonic()

    def status(self) -> str:
        """One line for STATUS=."""
        return (
            f"{self.counters['experiences']} experiences, {self.counters['rejected']} rejected, "
            f"{self.policy.updates} updates"
        )

    def reload(self, config: Config) -> None:
        """Thresholds and intervals apply from now on; the model is kept."""
        self.config = config
        self.sources = parse_sources(config.rl.sources)

    def close(self) -> None:
        """Checkpoint what was learned, then disconnect."""
        if self.adapter is not None and any(self.to_ack.values()):
            try:
                self.commit()
            except Exception:
                log.exception("final checkpoint failed; the entries stay pending")
        if self.adapter is not None:
            self.publish_stats_quietly()
        self.close_connection()

    def publish_stats_quietly(self) -> None:
        try:
            self.publish_stats()
        except Exception:
            log.debug("stats at exit failed", exc_info=True)

    def close_connection(self) -> None:
        if self.adapter is not None:
            self.adapter.close()
            self.adapter = None


def _window(rewards: np.ndarray, name: str) -> dict[str, str]:
    """Reward mean/std/min/max over the newest `name` rewards (the main fields: the last 1000)."""
    return {
        f"reward_mean_{name}": f"{float(rewards.mean()):.6f}",
        f"reward_std_{name}": f"{float(rewards.std()):.6f}",
        f"reward_min_{name}": f"{float(rewards.min()):.6f}",
        f"reward_max_{name}": f"{float(rewards.max()):.6f}",
    }


def parse_sources(entries: tuple[str, ...]) -> dict[str, SourceMap]:
    """`source=field:scale` entries (`*` matches any source); a bad one is fatal."""
    try:
        maps: dict[str, SourceMap] = source_maps(entries)
    except ValueError as exc:
        raise FatalDaemonError(str(exc)) from None
    return maps


def create(config: Config) -> RlAgent:
    """The daemon factory `qtctl run rl-agent` uses."""
    return RlAgent(config)
