"""The stream checks when Redis misbehaves: restarted or killed mid-check, keys changing under
the scan, and a 10-million-entry stream. Each gets a clear answer and doctor goes on."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
import redis

from qtctl.adapters.redis_client import read_streams
from qtctl.checks import backends, host_resources, redis_streams
from qtctl.config import load_config
from qtctl.engine.check import Check
from qtctl.engine.context import CheckContext
from qtctl.engine.report import Report
from qtctl.engine.runner import Selection, run_checks
from tests.support.redis_server import RedisServer, start_redis

P = "quantum:stream:"


@pytest.fixture
def server() -> Iterator[list[RedisServer]]:
    """The servers of one test, the replacement after a restart included; all killed by pid."""
    servers = [start_redis()]
    yield servers
    for started in servers:
        started.stop()


def doctor_with(step: Callable[[], None], url: str) -> Report:
    """QT400, then `step` (what happens to Redis mid-run), then the stream and host checks."""

    def between(ctx: CheckContext) -> list:
        step()
        return []

    checks = (
        backends.REDIS_CHECK,
        Check("between", backends.REDIS_CHECK.codes, between),
        redis_streams.CHECK,
        host_resources.CHECK,
    )
    config = load_config(None, env={"QTCTL__REDIS__URL": url, "QTCTL__STREAMS__EXPECTED": "a,b"})
    return run_checks(checks, CheckContext(config), Selection(select=("QT4", "QT6")), timeout=20)


def test_redis_restarted_mid_check_reports_what_the_new_server_holds(
    server: list[RedisServer],
) -> None:
    first = server[0]
    redis.Redis(port=first.port).xadd(f"{P}a", {"i": "1"})

    def restart() -> None:  # the same port, and no persistence: the streams are gone
        first.stop()
        server.append(start_redis(port=first.port))

    report = doctor_with(restart, first.url)
    assert not report.skipped
    findings = [f for f in report.findings if f.code.startswith("QT4")]
    assert sorted((f.code, f.subject, f.message) for f in findings) == [
        ("QT405", f"{P}a", f"{P}a does not exist"),
        ("QT405", f"{P}b", f"{P}b does not exist"),
    ]


def test_redis_killed_mid_check_skips_the_stream_checks_with_the_reason(
    server: list[RedisServer],
) -> None:
    report = doctor_with(server[0].stop, server[0].url)
    [skipped] = report.skipped
    assert skipped.check == "redis_streams"
    assert skipped.reason.startswith("connection lost during the stream checks")
    assert "host_resources" in report.checks_run


def test_keys_deleted_or_replaced_between_scan_and_read_are_reported_per_key(
    server: list[RedisServer],
) -> None:
    client = redis.Redis(port=server[0].port, decode_responses=True)
    client.xadd(f"{P}kept", {"i": "1"})
    client.xadd(f"{P}replaced", {"i": "1"})
    client.delete(f"{P}replaced")
    client.set(f"{P}replaced", "a string now")
    infos = read_streams(client, [f"{P}kept", f"{P}gone", f"{P}replaced"])
    assert infos[f"{P}kept"].length == 1 and not infos[f"{P}kept"].error
    assert infos[f"{P}gone"].error == "deleted while checking"
    assert infos[f"{P}replaced"].error == "not a stream (WRONGTYPE)"


def test_a_ten_million_entry_stream_is_judged_without_reading_it(
    server: list[RedisServer],
) -> None:
    client = redis.Redis(port=server[0].port, decode_responses=True)
    script = "for i=ARGV[1],ARGV[1]+999999 do redis.call('XADD', KEYS[1], i .. '-1', 'i', '1') end"
    for start in range(1, 10_000_000, 1_000_000):  # each call well under Redis' busy threshold
        client.eval(script, 1, f"{P}model.retrain", start)
    assert client.xlen(f"{P}model.retrain") == 10_000_000
    report = doctor_with(lambda: None, server[0].url)
    [too_long] = [f for f in report.findings if f.code == "QT401"]
    assert too_long.severity.name == "ERROR"
    assert too_long.message.startswith("10000000 entries, ")
    assert too_long.message.endswith("MiB; nothing trims it")
    assert "QT000" not in {f.code for f in report.findings}
