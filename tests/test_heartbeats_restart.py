"""QT704 heartbeats and QT705 Redis restarts against a real redis-server."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import pytest
import redis

from checks.heartbeats import parse_time
from qtctl.config import load_config
from qtctl.doctor import run_doctor
from qtctl.errors import ConfigError
from tests.conftest import run_cli
from tests.support.redis_server import RedisServer, start_redis

pytestmark = pytest.mark.redis


def findings(url: str, select: str, **env: str) -> dict[str, tuple[str, str, str]]:
    base = {"QTCTL__REDIS__URL": url, "QTCTL__DOCTOR__SELECT": select}
    report = run_doctor(load_config(None, env={**base, **env}))
    return {f.subject: (str(f.severity), f.cause, f.message) for f in report.findings}


def test_heartbeat_ages_from_every_value_shape(redis_server: RedisServer) -> None:
    client = redis.Redis.from_url(redis_server.url, decode_responses=True)
    now = time.time()
    client.set("hb:seconds", str(now - 5))
    client.set("hb:millis", str(int((now - 90) * 1000)))
    client.set("hb:iso", time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now - 4000)))
    client.set("hb:json", json.dumps({"service": "ai-engine", "ts": now - 70}))
    client.hset("hb:hash", mapping={"status": "ok", "updated_at": str(now - 2)})
    client.xadd("hb:stream", {"beat": 1}, id=f"{int((now - 1000) * 1000)}-0")
    client.set("hb:presence", "1", ex=30)
    client.set("hb:opaque", "alive")
    rules = ",".join(
        f"hb:{k}=60"
        for k in (
            "seconds",
            "millis",
            "iso",
            "json",
            "hash",
            "stream",
            "presence",
            "opaque",
            "gone",
        )
    )
    found = findings(redis_server.url, "QT704", QTCTL__SERVICES__HEARTBEATS=rules)
    assert {k: v[:2] for k, v in found.items()} == {
        "hb:millis": ("warning", "stale"),
        "hb:iso": ("error", "stale"),
        "hb:json": ("warning", "stale"),
        "hb:stream": ("error", "stale"),
        "hb:opaque": ("warning", "no-timestamp"),
        "hb:gone": ("error", "missing"),
    }
    assert found["hb:millis"][2] == "heartbeat is 90 s old (allowed 60 s)"
    assert found["hb:iso"][2] == "heartbeat is 67 min old (allowed 60 s)"


def test_heartbeat_globs_and_ttl_rule(redis_server: RedisServer) -> None:
    client = redis.Redis.from_url(redis_server.url, decode_responses=True)
    client.set("quantum:heartbeat:ai-engine", str(time.time()), ex=60)
    client.set("quantum:heartbeat:exit-watch", str(time.time() - 300))  # no TTL, stale
    env = {
        "QTCTL__SERVICES__HEARTBEATS": "quantum:heartbeat:*=120,quantum:heartbeat:none-*=10",
        "QTCTL__SERVICES__HEARTBEAT_TTL_KEYS": "quantum:heartbeat:*",
    }
    found = findings(redis_server.url, "QT704", **env)
    assert found == {
        "quantum:heartbeat:exit-watch": (
            "warning",
            "no-ttl",
            "heartbeat key has no TTL: after its writer dies it still looks alive",
        ),
        "quantum:heartbeat:none-*": (
            "error",
            "missing",
            "no heartbeat: no key matches (expires or was never written)",
        ),
    }
    client.set("quantum:heartbeat:exit-watch", str(time.time() - 300), ex=60)
    found = findings(redis_server.url, "QT704", **env)
    assert found["quantum:heartbeat:exit-watch"][:2] == ("warning", "stale")


def test_heartbeat_rules_are_validated_at_load() -> None:
    with pytest.raises(ConfigError, match=r"services\.heartbeats.*KEY=MAX_AGE_SEC"):
        load_config(None, env={"QTCTL__SERVICES__HEARTBEATS": "quantum:hb:x"})
    res = run_cli("doctor", env={"QTCTL__SERVICES__HEARTBEATS": "k=-5"})
    assert res.returncode == 2 and "services.heartbeats" in res.stderr


def test_parse_time_shapes() -> None:
    assert parse_time("1700000000") == 1700000000.0
    assert parse_time("1700000000123") == pytest.approx(1700000000.123)
    assert parse_time("1700000000123456") == pytest.approx(1700000000.123456)
    assert parse_time("2023-11-14T22:13:20+00:00") == 1700000000.0
    assert parse_time("2023-11-14T22:13:20") == 1700000000.0  # naive means UTC
    for bad in ("nan", "inf", "-1", "0", "1", "42", "alive", "", True):
        assert parse_time(bad) is None


def test_redis_restart_names_groups_not_read_since(
    redis_factory: Callable[..., RedisServer],
) -> None:
    server = redis_factory(aof=True, extra=("--appendfsync", "always"))
    client = redis.Redis.from_url(server.url, decode_responses=True)
    for stream in ("quantum:stream:trade.intent", "quantum:stream:trade.closed"):
        client.xadd(stream, {"n": 1})
        client.xgroup_create(stream, "workers", id="0")
        client.xreadgroup("workers", "w1", {stream: ">"}, count=1)
        client.xadd(stream, {"n": 2})
    time.sleep(2.5)
    server.kill()
    server = redis_factory(aof=True, port=server.port, workdir=server.workdir)
    client = redis.Redis.from_url(server.url, decode_responses=True)
    time.sleep(2.5)  # a consumer that reads now is alive; one idle since the load is not
    client.xreadgroup("workers", "w1", {"quantum:stream:trade.closed": ">"}, count=10)
    env = {"QTCTL__SERVICES__REDIS_UPTIME_SLACK_SEC": "0"}
    [(subject, (severity, cause, message))] = findings(server.url, "QT705", **env).items()
    assert (subject, severity, cause) == ("redis", "warning", "restarted")
    assert message.endswith("; 1 consumer group(s) have not read since")
    report = run_doctor(
        load_config(
            None, env={"QTCTL__REDIS__URL": server.url, "QTCTL__DOCTOR__SELECT": "QT705", **env}
        )
    )
    detail = report.findings[0].detail
    assert detail[1].startswith("persistence: AOF") and detail[1].endswith("keys now")
    assert detail[2:] == (
        "group not read since the restart: quantum:stream:trade.intent workers "
        "(lag 1, pending 1; 1 consumer(s) idle)",
    )


def test_redis_up_as_long_as_the_system_is_quiet(redis_server: RedisServer) -> None:
    env = {"QTCTL__SERVICES__REDIS_UPTIME_SLACK_SEC": "1000000000"}
    assert findings(redis_server.url, "QT705", **env) == {}
    env = {
        "QTCTL__SERVICES__REDIS_UPTIME_SLACK_SEC": "0",
        "QTCTL__SERVICES__REDIS_RESTART_RECENT_SEC": "1",
    }
    time.sleep(1.1)
    assert findings(redis_server.url, "QT705", **env) == {}


def test_empty_redis_after_restart_says_state_is_gone() -> None:
    server = start_redis()
    try:
        [finding] = run_doctor(
            load_config(
                None,
                env={
                    "QTCTL__REDIS__URL": server.url,
                    "QTCTL__DOCTOR__SELECT": "QT705",
                    "QTCTL__SERVICES__REDIS_UPTIME_SLACK_SEC": "0",
                },
            )
        ).findings
        assert finding.detail[1].startswith("the database is empty")
    finally:
        server.stop()
