"""Hand-packed RESP and JSON against redis-py's public API and json.dumps, A/B in one process.

Each variant swaps one piece of the real code for its plain version and runs the real thing
(the risk kernel's full cycle for 1,000 positions, the bridge's backlog drain) against one
redis-server started here; variants alternate round by round, so machine noise hits all alike.
What the public-API variants use: `client.pipeline(transaction=False)` + `execute_command` per
command + `execute(raise_on_error=False)` (what `pipe.hset(...)`/`pipe.xadd(...)` end in), and
`client.evalsha`; replies through redis-py's own parser (hiredis installed).
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, ExitStack, contextmanager
from functools import lru_cache
from itertools import repeat
from types import SimpleNamespace
from typing import Any

import redis

from bench.harness import Comparison
from qtctl.adapters import resp
from qtctl.config import load_config
from qtctl.daemons.risk_kernel import inputs

_RAW_COMMANDS = inputs._commands.__wrapped__

Variant = Callable[[], AbstractContextManager[Any]]


def interleave_many(
    fns: Mapping[str, Callable[[], object]],
    rounds: int,
    clock: Callable[[], float] = time.perf_counter,
) -> dict[str, list[float]]:
    """Time every callable once per round, in turn (two warm-up rounds first). With
    `time.process_time` as the clock: this process's CPU only, which other load disturbs less."""
    times: dict[str, list[float]] = {name: [] for name in fns}
    for r in range(rounds + 2):
        for name, fn in fns.items():
            started = clock()
            fn()
            if r >= 2:
                times[name].append(clock() - started)
    return times


# -- redis-py's public API behind the interface of qtctl.adapters.resp ---------------------------


class _Rows:
    """`resp.Template` with argument tuples instead of RESP text."""

    def __init__(self, *shape: str | None) -> None:
        self.shape = shape

    def rows(self, *columns: Sequence[str]) -> list[tuple[str, ...]]:
        out = []
        for row in zip(*columns, strict=True):
            values = iter(row)
            out.append(tuple(next(values) if a is None else a for a in self.shape))
        return out


def _send(client: Any, chunks: Iterable[Sequence[Any]], transaction: bool = False) -> list[Any]:
    pipe = client.pipeline(transaction=transaction)
    for chunk in chunks:
        for args in chunk:
            pipe.execute_command(*args)
    return list(pipe.execute(raise_on_error=False))


def _reply(conn: Any) -> Any:
    try:
        return conn.read_response()
    except redis.ResponseError as exc:
        return exc


_encode = json.JSONEncoder(separators=(",", ":")).encode


def json_rows(fields: Mapping[str, str | Sequence[str]], count: int) -> list[str]:
    """`resp.json_rows` through one reused json encoder: a dict per row."""
    names = list(fields)
    columns = [repeat(v, count) if isinstance(v, str) else v for v in fields.values()]
    return [_encode(dict(zip(names, row, strict=True))) for row in zip(*columns, strict=False)]


PUBLIC = SimpleNamespace(
    command=lambda *args: args,
    Template=_Rows,
    execute=lambda client, commands, transaction=False: _send(client, [commands], transaction),
    send=_send,
    json_rows=lambda fields, count: resp.json_rows(fields, count),  # as `json_payloads` sets it
)


@contextmanager
def _patched(obj: object, name: str, value: object) -> Iterator[None]:
    old = getattr(obj, name)
    setattr(obj, name, value)
    try:
        yield
    finally:
        setattr(obj, name, old)


def public_reads() -> AbstractContextManager[Any]:
    """The 3,000 HMGETs through a redis-py pipeline (their own command cache)."""
    stack = ExitStack()
    stack.enter_context(_patched(inputs, "resp", PUBLIC))
    stack.enter_context(_patched(inputs, "Template", _Rows))
    stack.enter_context(_patched(inputs, "_commands", _public_commands))
    return stack


@lru_cache(maxsize=4)
def _public_commands(prefixes: tuple[str, str, str], symbols: tuple[str, ...]) -> list[Any]:
    return _RAW_COMMANDS(prefixes, symbols)  # type: ignore[no-any-return]


def public_writes() -> AbstractContextManager[Any]:
    """Holds, proposals (HSET + XADD each), deletions and counters through a redis-py pipeline."""
    from qtctl.daemons.risk_kernel import daemon, publish

    stack = ExitStack()
    stack.enter_context(_patched(publish, "resp", PUBLIC))
    stack.enter_context(_patched(publish, "Template", _Rows))
    stack.enter_context(_patched(daemon, "resp", PUBLIC))
    return stack


def public_reply_reads() -> AbstractContextManager[Any]:
    """Packed commands as now, every reply through redis-py's `read_response` (no `_sock`)."""

    def per_reply(conn: Any, count: int) -> list[Any]:
        return [_reply(conn) for _ in range(count)]

    return _patched(resp, "_read", per_reply)


def json_payloads() -> AbstractContextManager[Any]:
    """Stream payloads through json (one reused encoder) instead of the `%` template."""
    return _patched(resp, "json_rows", json_rows)


def json_weights() -> AbstractContextManager[Any]:
    """The weights column through a `json.dumps` per row instead of `resp.json_number_rows`."""
    from qtctl.daemons.risk_kernel import columns

    def dumps(w: Any) -> list[str]:
        return [json.dumps(dict(zip(columns.REGIMES, row, strict=True))) for row in w.tolist()]

    return _patched(columns, "_weights_json", dumps)


def all_public() -> AbstractContextManager[Any]:
    """redis-py's public API for every command, json for every payload."""
    stack = ExitStack()
    for variant in (public_reads, public_writes, json_payloads, json_weights):
        stack.enter_context(variant())
    return stack


@contextmanager
def shipped() -> Iterator[None]:
    """The code as it is."""
    yield


CYCLE_VARIANTS: dict[str, Variant] = {
    "as shipped (hand-packed)": shipped,
    "payloads via json (one encoder)": json_payloads,
    "weights via json.dumps": json_weights,
    "replies via read_response (no _sock)": public_reply_reads,
    "reads via redis-py pipeline": public_reads,
    "writes via redis-py pipeline": public_writes,
    "all redis-py + json": all_public,
}


def cycle_times(
    rounds: int, clock: Callable[[], float] = time.perf_counter
) -> dict[str, list[float]]:
    """The risk kernel's full cycle for 1,000 positions (every proposal due), per variant."""
    sys.path.insert(0, ".")
    from bench.risk_kernel import seed
    from qtctl.daemons.risk_kernel.daemon import RiskKernel
    from tests.support.redis_server import start_redis

    server = start_redis()
    try:
        seed(redis.Redis(port=server.port, decode_responses=True))
        env = {"QTCTL__REDIS__URL": server.url, "QTCTL__RISK__PUBLISH_INTERVAL_SEC": "0.1"}
        kernel = RiskKernel(load_config(None, env=env))
        kernel.setup()

        def full_cycle(variant: Variant) -> Callable[[], None]:
            def run() -> None:
                for symbol in kernel.published:
                    kernel.published[symbol] = ("", 0.0)
                kernel.scanned_at = 0.0
                with variant():
                    assert kernel.cycle()["published"] == 1000

            return run

        fns = {name: full_cycle(v) for name, v in CYCLE_VARIANTS.items()}
        times = interleave_many(fns, rounds, clock)
        kernel.close()
    finally:
        server.stop()
    return times


def packed_evalsha() -> AbstractContextManager[Any]:
    """The bridge's copy call packed as RESP and read through `resp` (before)."""
    from qtctl.adapters.redis_client import text
    from qtctl.daemons.bridge import daemon
    from qtctl.daemons.bridge.copy_script import COPY_BATCH, COPY_BATCH_SHA

    def evalsha(self: Any, keys: list[str], argv: list[Any]) -> list[str]:
        client = self.adapter.client
        command = resp.command("EVALSHA", COPY_BATCH_SHA, str(len(keys)), *keys, *map(str, argv))
        reply = resp.execute(client, [command])[0]
        if isinstance(reply, redis.ResponseError) and str(reply).startswith("NOSCRIPT"):
            client.script_load(COPY_BATCH)
            reply = resp.execute(client, [command])[0]
        if isinstance(reply, Exception):
            raise reply
        return [text(x) for x in reply]

    return _patched(daemon.Bridge, "_evalsha", evalsha)


BRIDGE_VARIANTS: dict[str, Variant] = {
    "client.evalsha (as shipped)": shipped,
    "hand-packed EVALSHA through resp (before)": packed_evalsha,
}


def drain_times(rounds: int, backlog: int = 300_000) -> dict[str, list[float]]:
    """Seconds per 1,000 entries draining the same seeded backlog, per bridge variant."""
    sys.path.insert(0, ".")
    from bench import bridge
    from tests.support.redis_server import start_redis

    server = start_redis()
    try:
        client = redis.Redis(port=server.port, decode_responses=True)
        bridge._seed(client, "bench:src", backlog)

        def drain(variant: Variant) -> Callable[[], None]:
            def run() -> None:
                client.delete("bench:dst", "quantum:qtctl:bridge:bench:src")
                with variant():
                    b: Any = bridge._bridge(server.url, "bench:src", "bench:dst")
                    while b.step():
                        pass
                    b.close()
                assert client.xlen("bench:dst") == backlog

            return run

        fns = {name: drain(v) for name, v in BRIDGE_VARIANTS.items()}
        times = interleave_many(fns, rounds)
    finally:
        server.stop()
    return {k: [t * 1000 / backlog for t in v] for k, v in times.items()}


def _rows(
    bench: str, times: dict[str, list[float]], baseline: str, target: str
) -> list[Comparison]:
    return [
        Comparison(
            name=bench,
            candidate=name,
            baseline=baseline,
            target=target,
            candidate_times=tuple(t),
            baseline_times=tuple(times[baseline]),
        )
        for name, t in times.items()
        if name != baseline
    ]


SHIPPED_CYCLE, SHIPPED_BRIDGE = next(iter(CYCLE_VARIANTS)), next(iter(BRIDGE_VARIANTS))


def run(rounds: int = 15) -> list[Comparison]:
    """Every variant (candidate) against the code as shipped (baseline): above 1x is slower."""
    wall = cycle_times(rounds)
    cpu = cycle_times(rounds, time.process_time)
    drains = drain_times(max(3, rounds // 3))
    cycle = "risk kernel cycle, 1000 positions, every proposal due"
    return [
        *_rows(f"{cycle} (wall)", wall, SHIPPED_CYCLE, "< 50 ms"),
        *_rows(f"{cycle} (this process' CPU)", cpu, SHIPPED_CYCLE, "< 50 ms"),
        *_rows(
            "bridge backlog, 300k (per 1000 entries)", drains, SHIPPED_BRIDGE, ">= 0.35x ceiling"
        ),
    ]
