"""`qtctl run rl-agent`: size each trade from a model of its context, learn from every close.

Reading: one XREADGROUP (consumer group `rl.group`, a stable consumer) over the sizing requests,
the closed trades and `rl_rewards`, so a request wakes the agent at once. Requests are answered
first and acknowledged with their answer; closed trades are learned, then acknowledged only when
a checkpoint that contains them is on disk.

Exactness: the checkpoint records the entries it learned but has not acknowledged, the
dead letters not yet written and the absolute counters; the commit that follows writes the
counters, acknowledges the entries and writes those dead letters in one server-side call
(`commit.py`). After a crash:
- pending entries the checkpoint lists are already in the model: acknowledged, not counted again;
- every other pending entry (our own, or one claimed from a dead consumer) is learned again.
So no experience or dead letter is counted twice or lost.
"""

from __future__ import annotations

import logging
import random
import socket
import time
from pathlib import Path
from typing import Any

import redis

from qtctl.adapters.redis_client import RedisAdapter, text
from qtctl.config import Config
from qtctl.daemon.runtime import FatalDaemonError
from qtctl.daemons.rl_agent import checkpoint
from qtctl.daemons.rl_agent.commit import commit
from qtctl.daemons.rl_agent.ingest import Learner, Ledger
from qtctl.daemons.rl_agent.policy import SizeModel, parse_bins
from qtctl.daemons.rl_agent.records import SourceMap, parse_reward_scales, source_maps
from qtctl.daemons.rl_agent.serving import Server, stats_fields

log = logging.getLogger("qtctl.rl_agent")


def build_model(config: Config) -> SizeModel:
    """The size model as configured; a bad setting is fatal."""
    s = config.rl
    actions = tuple(
        float(m) for m in s.multipliers if s.min_multiplier <= float(m) <= s.max_multiplier
    )
    if not actions:
        raise FatalDaemonError("no rl.multipliers within rl.min/max_multiplier")
    try:
        bins = parse_bins(s.bins)
    except ValueError as exc:
        raise FatalDaemonError(str(exc)) from None
    fields = {b.field for b in bins}
    unknown = [f for f in (s.scale_field, *s.linear) if f and f not in fields]
    if unknown:  # the defaults name confidence and volatility: custom bins may lack them
        log.warning("rl.scale_field/rl.linear: %s not in rl.bins, not used", ", ".join(unknown))
    return SizeModel(
        bins,
        actions,
        s.risk_aversion,
        s.cost_bps / 10_000,
        s.min_trades,
        s.scale_field,
        s.linear,
        s.caution,
    )


class RlAgent:
    """The daemon: answer requests, learn closed trades, checkpoint-then-acknowledge."""

    def __init__(self, config: Config, client: redis.Redis | None = None) -> None:
        self.config = config
        s = config.rl
        prefix = config.streams.prefix
        self.stream, self.reward_stream = prefix + s.trade_stream, prefix + s.reward_stream
        self.request_stream = prefix + s.request_stream
        self.learned = [self.stream, self.reward_stream]
        self.streams = [self.request_stream, *self.learned]
        self.consumer = s.consumer or socket.gethostname()
        self.model = build_model(config)
        self.ledger = Ledger(self.learned)
        self.learner = Learner(
            s, parse_sources(s.sources), _reward_scales(s.reward_sources), self.reward_stream,
            self.model, self.ledger,
        )  # fmt: skip
        rng = random.Random(s.seed)
        self.server = Server(s, prefix, self.model, self.learner.extra, rng, self.ledger.counters)
        self.client = client
        self.draining = True  # our own pending entries come first after a start
        self.drain_from = dict.fromkeys(self.streams, "0")
        self.since_checkpoint = 0
        self.checkpointed_at = time.monotonic()
        self.stats_at = 0.0
        self.claimed_at = 0.0  # orphans are looked for a few times per rl.claim_idle_sec
        self.answered = 0

    # lifecycle -----------------------------------------------------------------------------
    def setup(self) -> None:
        """Connect, create the groups, and load the newest good checkpoint."""
        self.close_connection()
        s = self.config.rl
        adapter = RedisAdapter.connect(self.config.redis, decode=False, block_sec=s.block_ms / 1000)
        self.client = client = adapter.client
        for stream in self.streams:
            try:
                client.xgroup_create(stream, s.group, id=s.start_id, mkstream=True)
                log.info("created group %s on %s at %s", s.group, stream, s.start_id)
            except redis.ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise
        state, path = checkpoint.load_latest(Path(s.model_dir))
        if state is not None:
            self._resume(client, state, path)
        self.draining = True
        self.drain_from = dict.fromkeys(self.streams, "0")

    def _resume(self, client: redis.Redis, state: dict[str, Any], path: Path | None) -> None:
        self.ledger.load(state)
        self.server.counters = self.ledger.counters
        try:
            self.model.load(state["policy"])
        except (KeyError, ValueError) as exc:  # an older model, other bins or multipliers
            log.warning(
                "checkpoint %s holds another model (%s): the model starts afresh", path, exc
            )
        fresh = [str(t) for t in state.get("fresh", [])]
        if fresh:  # a crash after the checkpoint, before its commit: remember them now
            client.sadd(self.config.rl.seen_key, *fresh)
        log.info(
            "resumed from %s: %d experiences, positions %s",
            path,
            self.ledger.counters["experiences"],
            self.ledger.positions,
        )

    def step(self) -> bool:
        """One batch: requests first, then closed trades; True while more is waiting."""
        client = self._client()
        self.answered = 0
        batches, more = self._read(client)
        requests = batches.pop(self.request_stream, [])
        if requests:  # pending ones after a restart (expired ones are only acknowledged)
            self.server.answer(client, self.request_stream, self.config.rl.group, requests)
            self.answered = len(requests)
        learned = sum(self.learner.process(client, k, v) for k, v in batches.items())
        self.since_checkpoint += bool(learned)
        s, now = self.config.rl, time.monotonic()
        due = now - self.checkpointed_at >= s.checkpoint_every_sec
        if self.ledger.waiting() and (self.since_checkpoint >= s.checkpoint_every or due):
            self.commit()
        if now - self.stats_at >= s.stats_every_sec:
            self.publish_stats()
        return more or bool(self.answered) or any(len(v) >= s.batch for v in batches.values())

    def _read(self, client: redis.Redis) -> tuple[dict[str, list[Any]], bool]:
        """Our pending entries walking forward from the oldest, else new ones (blocking) and
        orphans of dead peers; `more` says a drain just ended, so --once goes on."""
        s = self.config.rl
        if self.draining:
            reply: Any = client.xreadgroup(s.group, self.consumer, self.drain_from, count=s.batch)  # type: ignore[arg-type]
            batches = {text(k): v for k, v in reply or [] if v}
            for stream, entries in batches.items():
                self.drain_from[stream] = text(entries[-1][0])
            self.draining = bool(batches)
            return batches, True
        streams = dict.fromkeys(self.streams, ">")
        reply = client.xreadgroup(s.group, self.consumer, streams, count=s.batch, block=s.block_ms)  # type: ignore[arg-type]
        batches = {text(k): v for k, v in reply or [] if v}
        if self.request_stream in batches:  # answered before anything else: latency
            requests = batches.pop(self.request_stream)
            self.server.answer(client, self.request_stream, s.group, requests)
            self.answered = len(requests)
        if time.monotonic() - self.claimed_at >= min(s.claim_idle_sec / 4, 5.0):
            self.claimed_at = time.monotonic()
            for stream in self.learned:
                if len(batches.get(stream, [])) < s.batch:
                    orphans = self._claim_orphans(client, stream)
                    if orphans:
                        batches[stream] = batches.get(stream, []) + orphans
        return batches, False

    def _claim_orphans(self, client: redis.Redis, stream: str) -> list[Any]:
        s = self.config.rl
        reply: Any = client.xautoclaim(
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

    def commit(self) -> None:
        """Checkpoint (model, counters, positions, what awaits acknowledgement), then commit."""
        s = self.config.rl
        payload = {"policy": self.model.state(), **self.ledger.state(), "saved_at": time.time()}
        try:
            checkpoint.save(Path(s.model_dir), self.model.updates, payload, s.keep_checkpoints)
        except OSError as exc:  # e.g. disk full: keep learning, acknowledge nothing yet
            log.error(
                "%s; %d entries stay pending until a checkpoint succeeds",
                exc,
                self.ledger.waiting(),
            )
            self.checkpointed_at = time.monotonic()
            return
        counters = {k: str(v) for k, v in self.ledger.counters.items()}
        counters["model_version"] = counters["updates"] = str(self.model.updates)
        keys = (s.stats_key, s.seen_key, self.config.streams.prefix + s.dead_letter)
        ledger = self.ledger
        commit(
            self._client(), keys, s.group, self.learned, ledger.to_ack, ledger.dead,
            sorted(ledger.fresh), counters,
        )  # fmt: skip
        ledger.committed()
        self.since_checkpoint = 0
        self.checkpointed_at = time.monotonic()

    def publish_stats(self) -> None:
        """The stats hash and stream, and the recommendation per symbol."""
        s = self.config.rl
        pipe = self._client().pipeline(transaction=False)
        published = self.server.recommend(pipe, self.learner.closes)
        stats = stats_fields(
            self.ledger.counters, self.model, self.learner.recent, self.server.served
        )
        stats["recommendations_published"] = published
        pipe.hset(s.stats_key, mapping=stats)
        pipe.xadd(self.config.streams.prefix + s.stats_stream, stats, maxlen=10_000)
        pipe.execute()
        self.stats_at = time.monotonic()

    def status(self) -> str:
        """One line for STATUS=."""
        c = self.ledger.counters
        return (
            f"{c['experiences']} experiences, {c['rejected']} rejected, {c['decisions']} "
            f"decisions, {self.model.updates} updates"
        )

    def reload(self, config: Config) -> None:
        """Thresholds and intervals apply from now on; the model is kept."""
        self.config = config
        self.learner.settings = self.server.settings = config.rl
        self.learner.sources = parse_sources(config.rl.sources)

    def close(self) -> None:
        """Checkpoint what was learned, then disconnect."""
        if self.client is not None and self.ledger.waiting():
            try:
                self.commit()
            except Exception:
                log.exception("final checkpoint failed; the entries stay pending")
        if self.client is not None:
            try:
                self.publish_stats()
            except Exception:
                log.debug("stats at exit failed", exc_info=True)
        self.close_connection()

    def close_connection(self) -> None:
        if self.client is not None:
            self.client.close()
            self.client = None

    def _client(self) -> redis.Redis:
        if self.client is None:
            raise FatalDaemonError("not connected")  # setup() always runs first
        return self.client


def parse_sources(entries: tuple[str, ...]) -> dict[str, SourceMap]:
    """`source=field:scale` entries (`*` matches any source); a bad one is fatal."""
    try:
        maps: dict[str, SourceMap] = source_maps(entries)
    except ValueError as exc:
        raise FatalDaemonError(str(exc)) from None
    return maps


def _reward_scales(entries: tuple[str, ...]) -> dict[str, tuple[str, float]]:
    try:
        scales: dict[str, tuple[str, float]] = parse_reward_scales(entries)
        return scales
    except ValueError as exc:
        raise FatalDaemonError(str(exc)) from None


def create(config: Config) -> RlAgent:
    """The daemon factory `qtctl run rl-agent` uses."""
    return RlAgent(config)
