"""The caller-packed pipeline (`qtctl.adapters.resp`) against a real redis-server: what it sends
is what redis-py would send, errors come back in place or raised as documented, and a lost or
stalled connection is never reused half read."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest
import redis

from qtctl.adapters import resp
from qtctl.adapters.resp import Template
from tests.support.redis_server import RedisServer


def client(server: RedisServer, **kwargs: object) -> redis.Redis:
    return redis.Redis(port=server.port, decode_responses=True, **kwargs)  # type: ignore[arg-type]


def test_template_rows_store_any_text_exactly(redis_server: RedisServer) -> None:
    r = client(redis_server)
    values = ["plain", "", "50% off", "€ and ü", "line\r\nbreak", "$5\r\n", "x" * 70_000]
    keys = [f"k:{i}" for i in range(len(values))]
    shape = Template("HSET", None, "fixed %d", "€ fixed", "value", None)
    commands = shape.rows(keys, values)
    assert resp.execute(r, commands) == [2] * len(values)
    for key, value in zip(keys, values, strict=True):
        assert r.hgetall(key) == {"fixed %d": "€ fixed", "value": value}
    assert resp.execute(r, [resp.command("HGET", "k:3", "value")]) == ["€ and ü"]


def test_many_replies_across_socket_reads(redis_server: RedisServer) -> None:
    r = client(redis_server)
    r.set("big", "v" * 4096)
    replies = resp.execute(r, [resp.command("GET", "big")] * 5000)  # 20 MB of replies
    assert len(replies) == 5000 and set(replies) == {"v" * 4096}
    raw = redis.Redis(port=redis_server.port)
    assert resp.execute(raw, [resp.command("GET", "big")]) == [b"v" * 4096]  # decode follows


def test_an_error_reply_comes_back_in_place(redis_server: RedisServer) -> None:
    r = client(redis_server)
    r.set("text", "x")
    replies = resp.execute(
        r, [resp.command("HGETALL", "text"), resp.command("SET", "after", "1")]
    )
    assert isinstance(replies[0], redis.ResponseError) and "WRONGTYPE" in str(replies[0])
    assert replies[1] == "OK" and r.get("after") == "1"
    assert resp.execute(r, [resp.command("PING")]) == ["PONG"]  # the connection is still whole


def test_transaction_refused_at_queueing_applies_nothing(redis_server: RedisServer) -> None:
    r = client(redis_server)
    commands = [resp.command("SET", "a", "1"), resp.command("SET", "b"), resp.command("PING")]
    with pytest.raises(redis.ResponseError, match="wrong number of arguments"):
        resp.execute(r, commands, transaction=True)
    assert r.exists("a") == 0
    assert resp.execute(r, [resp.command("PING")], transaction=True) == ["PONG"]


def test_transaction_error_inside_exec_is_raised(redis_server: RedisServer) -> None:
    r = client(redis_server)
    r.set("text", "x")
    commands = [resp.command("SET", "a", "1"), resp.command("HSET", "text", "f", "v")]
    with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
        resp.execute(r, commands, transaction=True)
    assert r.get("a") == "1"  # Redis applies the rest of an EXEC; the error still surfaces


def test_a_stalled_server_times_out_and_the_connection_is_dropped(
    redis_server: RedisServer,
) -> None:
    r = client(redis_server, socket_timeout=0.3)
    r.ping()  # connected: redis-py's own handshake is bounded by the connect timeout instead
    admin = client(redis_server)
    admin.execute_command("CLIENT", "PAUSE", "1500", "ALL")
    started = time.monotonic()
    with pytest.raises(redis.TimeoutError):
        resp.execute(r, [resp.command("PING")] * 10)
    assert time.monotonic() - started < 1.0
    time.sleep(1.4)
    assert resp.execute(r, [resp.command("PING")]) == ["PONG"]  # a fresh connection, no leftovers


def test_a_server_killed_midway_raises_connection_error(
    redis_factory: Callable[..., RedisServer],
) -> None:
    server = redis_factory()
    r = client(server, socket_timeout=5)
    r.set("big", "v" * 100_000)
    killer = threading.Timer(0.05, server.kill)
    killer.start()
    with pytest.raises(redis.ConnectionError):
        for _ in range(200):
            resp.execute(r, [resp.command("GET", "big")] * 2000)
    killer.join()


def test_nothing_to_send_is_not_a_round_trip(redis_server: RedisServer) -> None:
    r = client(redis_server)
    assert resp.execute(r, []) == []
    assert Template("HMGET", None, "a").rows([]) == []
