"""What `qtctl.adapters.resp` relies on in redis-py and hiredis, against a real redis-server:
the installed versions are inside pyproject's pins, and each internal the adapter reads still
exists and behaves as it assumes. A failure here means redis-py moved: fix the adapter (or
replace it with redis-py's API, `bench/resp_ab.py` says at what cost) before widening the pin."""

from __future__ import annotations

import socket
import tomllib
from importlib.metadata import version

import hiredis
import pytest
import redis
from packaging.requirements import Requirement

from qtctl.adapters import resp
from tests.conftest import REPO
from tests.support.redis_server import RedisServer

PING_ECHO = b"*1\r\n$4\r\nPING\r\n*2\r\n$4\r\nECHO\r\n$2\r\nhi\r\n"
REPLIES = b"+PONG\r\n$2\r\nhi\r\n"


def pins() -> dict[str, Requirement]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    requirements = [Requirement(line) for line in project["dependencies"]]
    return {r.name: r for r in requirements if r.name in ("redis", "hiredis")}


@pytest.mark.parametrize("name", ["redis", "hiredis"])
def test_the_installed_version_is_inside_the_pin(name: str) -> None:
    pin = pins()[name]
    assert pin.specifier, f"{name} has no upper bound: pin the range the adapter was tested on"
    assert any(s.operator == "<" for s in pin.specifier), pin
    assert pin.specifier.contains(version(name)), (name, version(name), str(pin.specifier))


def test_redis_py_parses_with_hiredis() -> None:
    """The `[hiredis]` extra: redis-py's own replies (bridge, pipelines) go through hiredis."""
    assert redis.utils.HIREDIS_AVAILABLE


def test_a_pooled_connection_exposes_its_socket_and_encoding(redis_server: RedisServer) -> None:
    client = redis.Redis(port=redis_server.port, decode_responses=True)
    pool = client.connection_pool
    conn = pool.get_connection()
    try:
        assert isinstance(conn._sock, socket.socket)
        assert (conn.encoder.encoding, conn.encoder.decode_responses) == ("utf-8", True)
    finally:
        pool.release(conn)
    raw = redis.Redis(port=redis_server.port).connection_pool.get_connection()
    assert raw.encoder.decode_responses is False


def test_packed_bytes_go_out_as_given_and_replies_wait_on_the_raw_socket(
    redis_server: RedisServer,
) -> None:
    client = redis.Redis(port=redis_server.port, decode_responses=True)
    pool = client.connection_pool
    conn = pool.get_connection()
    try:
        conn.send_packed_command([PING_ECHO])
        got = b""
        while len(got) < len(REPLIES):
            got += conn._sock.recv(4096)
        assert got == REPLIES
        conn.send_command("PING")  # redis-py's parser held none of those bytes: still in step
        assert conn.read_response() == "PONG"
    finally:
        pool.release(conn)


def test_disconnect_drops_the_socket_and_the_next_send_reconnects(
    redis_server: RedisServer,
) -> None:
    client = redis.Redis(port=redis_server.port, decode_responses=True)
    conn = client.connection_pool.get_connection()
    conn.disconnect()
    assert conn._sock is None  # what the adapter treats as a connection closed under it
    conn.send_packed_command([PING_ECHO])
    assert isinstance(conn._sock, socket.socket)
    client.connection_pool.release(conn)


def test_replies_never_go_through_redis_py_s_parser(
    redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = redis.Redis(port=redis_server.port, decode_responses=True)
    client.ping()  # connected (the handshake is redis-py's own)

    def refuse(*_: object, **__: object) -> None:
        raise AssertionError("the adapter read a reply through redis-py")

    monkeypatch.setattr(redis.connection.Connection, "read_response", refuse)
    replies = resp.execute(client, [resp.command("PING"), resp.command("EVALSHA", "0" * 40, "0")])
    assert replies[0] == "PONG"
    assert isinstance(replies[1], redis.ResponseError)
    assert str(replies[1]).startswith("NOSCRIPT")  # the code kept; redis-py would strip it


def test_hiredis_reader_keeps_partial_replies_and_error_codes() -> None:
    reader = hiredis.Reader(replyError=redis.ResponseError, encoding="utf-8")
    reader.feed(b"$5\r\nhel")
    assert reader.gets() is False
    reader.feed(b"lo\r\n-OOM command not allowed\r\n*2\r\n$1\r\na\r\n$-1\r\n")
    assert reader.gets() == "hello"
    error = reader.gets()
    assert isinstance(error, redis.ResponseError) and str(error) == "OOM command not allowed"
    assert reader.gets() == ["a", None]
    assert hiredis.Reader().gets() is False
