"""The pieces `bench/resp_ab.py` swaps, timed alone: client CPU per risk-kernel cycle (1,000
rows, 5,000 replies) and per bridge call, hand-packed (baseline) against the plain way."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import redis

from bench.harness import Comparison, interleave
from bench.resp_ab import json_rows
from qtctl.adapters import resp
from qtctl.daemons.risk_kernel.columns import REGIMES

N = 1000


def payload_fields(n: int = N) -> dict[str, str | list[str]]:
    """A cycle's stream-payload columns, as `publish.Writer` hands them over."""
    return {
        "timestamp": "1764590000.123",
        "position_side": ["LONG", "SHORT"] * (n // 2),
        "position_current_price": [f"{1000 + i * 1.37}" for i in range(n)],
        **{k: ["0.333333"] * n for k in ("p_trend", "p_mr", "p_chop")},
        "regime": ["trend"] * n,
        "reasons": ["trail-active,min-stop"] * n,
        "stop_loss": [f"{990 + i * 1.3:.10g}" for i in range(n)],
        "take_profit": [f"{1020 + i * 1.3:.10g}" for i in range(n)],
        "trailing_stop": [""] * n,
        "trailing_activation": [f"{1010 + i:.10g}" for i in range(n)],
        "inputs_digest": ["0123456789abcdef"] * n,
        "params_version": "p1.1",
        "seq": [str(i) for i in range(n)],
        "trading_state": "active",
        "exit_now": "0",
    }


def _json(rounds: int) -> list[Comparison]:
    fields = payload_fields()
    weights = np.random.default_rng(1).dirichlet([1, 1, 1], N).tolist()
    assert resp.json_rows(fields, N) == json_rows(fields, N)
    pairs = {
        "stream payloads, 1000 rows": (
            lambda: json_rows(fields, N),
            lambda: resp.json_rows(fields, N),
            "json encoder, a dict per row",
            "resp.json_rows (template)",
        ),
        "weights JSON, 1000 rows": (
            lambda: [json.dumps(dict(zip(REGIMES, w, strict=True))) for w in weights],
            lambda: resp.json_number_rows(REGIMES, weights),
            "json.dumps per row",
            "resp.json_number_rows (template)",
        ),
    }
    rows = []
    for name, (plain, packed, cand, base) in pairs.items():
        c, b = interleave(plain, packed, rounds * 4)
        rows.append(Comparison(name, cand, base, "", c, b))
    return rows


def _buffered(client: redis.Redis, packed: bytes, read: Callable[[Any, int], Any], n: int) -> float:
    """Seconds to read `n` replies already waiting in the socket (Redis' time excluded)."""
    pool = client.connection_pool
    conn: Any = pool.get_connection()
    conn.send_packed_command([packed])
    time.sleep(0.03)
    started = time.process_time()
    assert len(read(conn, n)) == n
    elapsed = time.process_time() - started
    pool.release(conn)
    return elapsed


def _per_reply(conn: Any, n: int) -> list[Any]:
    return [conn.read_response() for _ in range(n)]


def _replies(client: redis.Redis, rounds: int) -> Comparison:
    names = [f"f{j}" for j in range(9)]
    for i in range(N):
        client.hset(f"h:{i}", mapping={k: f"{i}.{k}" for k in names})
    reads = [resp.command("HMGET", f"h:{i % N}", *names) for i in range(3 * N)]
    writes = [resp.command("HSET", f"w:{i % N}", "a", "1") for i in range(2 * N)]
    packed = ("".join(reads) + "".join(writes)).encode()
    cand: list[float] = []
    base: list[float] = []
    for _ in range(rounds):
        cand.append(_buffered(client, packed, _per_reply, 5 * N))
        base.append(_buffered(client, packed, resp._read, 5 * N))
    return Comparison(
        "a cycle's 5000 replies (3000 HMGET + 2000 HSET), already received",
        "redis-py Connection.read_response per reply",
        "resp: one hiredis reader on Connection._sock",
        "",
        tuple(cand),
        tuple(base),
    )


def _evalsha(client: redis.Redis, rounds: int) -> Comparison:
    sha = client.script_load("return {'ok', '1000', '0', '1-1', '0', '0', '0', '1'}")
    keys = ["quantum:stream:a", "quantum:qtctl:bridge:a", "quantum:stream:a:dead-letter", "b"]
    argv: list[str | int] = [
        1000,
        "0",
        1764590000000,
        524288,
        0,
        "",
        "",
        "",
        "",
        "",
        1048576,
        "1-0",
    ]

    command = resp.command("EVALSHA", sha, str(len(keys)), *keys, *map(str, argv))

    def public() -> None:
        for _ in range(100):
            client.evalsha(sha, len(keys), *keys, *argv)

    def packed() -> None:
        for _ in range(100):
            resp.execute(
                client, [resp.command("EVALSHA", sha, str(len(keys)), *keys, *map(str, argv))]
            )

    assert resp.execute(client, [command])[0] == client.evalsha(sha, len(keys), *keys, *argv)
    c, b = interleave(public, packed, rounds * 2)
    return Comparison(
        "100 bridge copy calls (EVALSHA, 16 arguments, 8-element reply)",
        "client.evalsha",
        "resp.command + resp.execute",
        "",
        c,
        b,
    )


def run(rounds: int = 15) -> list[Comparison]:
    """Client-side cost of each piece (candidate: the plain way; baseline: hand-packed)."""
    sys.path.insert(0, ".")
    from tests.support.redis_server import start_redis

    rows = _json(rounds)
    server = start_redis()
    try:
        rows.append(_replies(redis.Redis(port=server.port, decode_responses=True), rounds))
        rows.append(_evalsha(redis.Redis(port=server.port), rounds))
    finally:
        server.stop()
    return rows
