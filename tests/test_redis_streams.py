"""QT401-QT405/QT407 against a real redis-server seeded like the fleet."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
import redis

from qtctl.config import load_config
from qtctl.doctor import run_doctor
from tests.support.redis_server import RedisServer

P = "quantum:stream:"


def seed(client: redis.Redis, code: Path) -> None:
    pipe = client.pipeline(transaction=False)
    for i in range(10_006):  # capped by its producer, like the real trade.intent
        pipe.xadd(f"{P}trade.intent", {"i": i}, maxlen=10_000, approximate=True)
    old = int((time.time() - 7200) * 1000)
    for i in range(200):  # the producer stopped two hours ago
        pipe.xadd(f"{P}ai.signal_generated", {"i": i}, id=f"{old + i}-0")
    for i in range(25_000):  # nobody trims it
        pipe.xadd(f"{P}model.retrain", {"i": i})
    for i in range(12_500):
        pipe.xadd(f"{P}trade.closed", {"i": i})
    for i in range(50):
        pipe.xadd(f"{P}execution.result", {"i": i})
        pipe.xadd(f"{P}trade.execution.result", {"i": i})  # the writer, after the "fix"
    for i in range(30):
        pipe.xadd(f"{P}trade.execution.res", {"i": i}, id=f"{old + i}-0")  # what readers read
    for i in range(100):
        pipe.xadd(f"{P}apply.result", {"i": i})
    pipe.set(f"{P}rl_rewards", "not a stream")
    for i in range(40):  # dozens of healthy streams, some read by up-to-date groups
        for j in range(20):
            pipe.xadd(f"{P}healthy.{i:02d}", {"j": j})
        if i % 3 == 0:
            pipe.xgroup_create(f"{P}healthy.{i:02d}", f"quantum:group:svc{i}", id="$")
    pipe.execute()
    client.xgroup_create(f"{P}trade.closed", "quantum:group:rl:trade.closed", id="0")
    client.xreadgroup(
        "quantum:group:rl:trade.closed", "rl-agent-1", {f"{P}trade.closed": ">"}, count=100
    )
    client.xgroup_create(f"{P}trade.execution.res", "quantum:group:exit-monitor", id="$")
    client.xgroup_create(f"{P}trade.execution.res", "quantum:group:position-monitor", id="$")
    client.xgroup_create(f"{P}apply.result", "quantum:group:audit", id="0")
    client.xtrim(f"{P}apply.result", maxlen=10, approximate=False)  # 90 gone, never read
    (code / "exit_monitor.py").write_text("STREAM = 'quantum:stream:trade.execution.res'\n")
    (code / "position_monitor.py").write_text("STREAM = 'quantum:stream:trade.execution.res'\n")
    (code / "bridge.py").write_text("DEST = 'quantum:stream:trade.execution.result'\n")


@pytest.fixture
def findings(redis_server: RedisServer, tmp_path: Path) -> dict[tuple[str, str], object]:
    client = redis.Redis.from_url(redis_server.url, decode_responses=True)
    code = tmp_path / "code"
    code.mkdir()
    seed(client, code)
    time.sleep(1.2)  # the consumer and its pending entries age past the test thresholds
    env = {
        "QTCTL__REDIS__URL": redis_server.url,
        "QTCTL__DOCTOR__SELECT": "QT4",
        "QTCTL__FLEET__CODE_ROOTS": str(code),
        "QTCTL__STREAMS__LENGTH_WARN": "20000",
        "QTCTL__STREAMS__PENDING_IDLE_SEC": "1",
        "QTCTL__STREAMS__DEAD_CONSUMER_SEC": "1",
        "QTCTL__STREAMS__EXPECTED": "trade.intent,ai.signal_generated,execution.result,"
        "trade.execution.result,trade.closed,rl_rewards,exit.intent",
    }
    report = run_doctor(load_config(None, env=env))
    return {(f.code, f.subject): f for f in report.findings}


def test_every_seeded_problem_is_found_exactly(findings: dict) -> None:
    assert sorted(findings) == sorted(
        [
            ("QT401", f"{P}model.retrain"),
            ("QT402", f"{P}ai.signal_generated"),
            ("QT403", f"{P}trade.closed group quantum:group:rl:trade.closed"),
            ("QT404", f"{P}trade.closed group quantum:group:rl:trade.closed consumer rl-agent-1"),
            ("QT405", f"{P}rl_rewards"),
            ("QT405", f"{P}exit.intent"),
            ("QT405", f"{P}trade.execution.result"),
            ("QT407", f"{P}apply.result group quantum:group:audit"),
        ]
    )


def test_details(findings: dict) -> None:
    assert findings[("QT401", f"{P}model.retrain")].message.endswith("nothing trims it")
    stale = findings[("QT402", f"{P}ai.signal_generated")]
    assert stale.message.startswith("newest entry is 2.0 h old")
    lag = findings[("QT403", f"{P}trade.closed group quantum:group:rl:trade.closed")]
    assert lag.severity.name == "ERROR"
    assert lag.message.startswith(
        "12400 entries behind, 100 pending; the oldest pending entry "
        "was delivered 1 s ago and never acknowledged"
    )
    assert findings[("QT405", f"{P}rl_rewards")].message == (
        f"{P}rl_rewards exists but is not a stream"
    )
    assert findings[("QT405", f"{P}exit.intent")].message == f"{P}exit.intent does not exist"
    trim = findings[("QT407", f"{P}apply.result group quantum:group:audit")]
    assert "entries were trimmed unread" in trim.message


def test_a_capped_stream_is_not_a_backlog(findings: dict) -> None:
    assert not [key for key in findings if key[1].startswith(f"{P}trade.intent")]


def test_near_miss_names_follow_the_evidence(findings: dict) -> None:
    finding = findings[("QT405", f"{P}trade.execution.result")]
    assert finding.message == f"near-miss name(s) with data: {P}trade.execution.res"
    expected, other, evidence = finding.detail
    assert expected.startswith(f"{P}trade.execution.result: 50 entries, newest ")
    assert "no consumer groups; named in 1 file(s)" in expected
    assert other.startswith(
        f"{P}trade.execution.res: 30 entries, newest 2.0 h ago; "
        "quantum:group:exit-monitor, quantum:group:position-monitor; "
        "named in 2 file(s)"
    )
    assert evidence.startswith(
        f"evidence: readers use {P}trade.execution.res (2 consumer group(s), named in 2 file(s) "
        "against 1): moving its entries into"
    )


def test_redis_unreachable_skips_the_stream_checks_and_doctor_goes_on() -> None:
    from tests.support.redis_server import free_port

    env = {
        "QTCTL__REDIS__URL": f"redis://127.0.0.1:{free_port()}/0",
        "QTCTL__DOCTOR__SELECT": "QT4,QT6",
    }
    report = run_doctor(load_config(None, env=env))
    assert [f.code for f in report.findings] == ["QT400"]
    assert [s.check for s in report.skipped] == ["redis_server", "redis_streams"]


def test_redis_stalling_mid_check_is_reported_and_doctor_goes_on(
    redis_server: RedisServer,
) -> None:
    from qtctl.checks import backends, host_resources, redis_streams
    from qtctl.engine.check import Check
    from qtctl.engine.context import CheckContext
    from qtctl.engine.runner import Selection, run_checks

    def pause(ctx: CheckContext) -> list:
        redis.Redis.from_url(redis_server.url).execute_command("CLIENT", "PAUSE", "3000", "ALL")
        return []

    checks = (
        backends.REDIS_CHECK,
        Check("pause", host_resources.CHECK.codes, pause),
        redis_streams.CHECK,
        host_resources.CHECK,
    )
    config = load_config(
        None, env={"QTCTL__REDIS__URL": redis_server.url, "QTCTL__REDIS__SOCKET_TIMEOUT": "0.3"}
    )
    started = time.monotonic()
    report = run_checks(checks, CheckContext(config), Selection(), timeout=10)
    assert time.monotonic() - started < 3
    [skipped] = report.skipped
    assert skipped.check == "redis_streams"
    assert skipped.reason.startswith("the stream checks timed out at redis://127.0.0.1:")
    assert "host_resources" in report.checks_run  # the rest of doctor still ran


@pytest.mark.sandbox
def test_stale_stream_says_whether_its_producer_runs(
    redis_server: RedisServer, sandbox: object
) -> None:
    from qtctl.sandbox import Sandbox, SandboxSpec

    box: Sandbox = sandbox(  # type: ignore[operator]
        SandboxSpec(
            units={
                "quantum-ai-engine.service": "[Service]\nExecStart=/bin/sleep infinity\n",
                "quantum-intent.service": "[Service]\nExecStart=/bin/false\n",
            },
            wants=["quantum-ai-engine.service", "quantum-intent.service"],
        )
    )
    assert box.wait_for("quantum-ai-engine.service", ["active"]) == "active"
    assert box.wait_for("quantum-intent.service", ["failed"]) == "failed"
    client = redis.Redis.from_url(redis_server.url, decode_responses=True)
    old = int((time.time() - 7200) * 1000)
    for name in ("ai.signal_generated", "trade.intent", "execution.result"):
        client.xadd(f"{P}{name}", {"i": "0"}, id=f"{old}-0")
    config = Path(os.environ["QTCTL_CONFIG"])
    config.write_text(
        f"[redis]\nurl = '{redis_server.url}'\n[systemd]\nbus_address = '{box.bus_address}'\n"
        "[streams]\nexpected = []\n"
        '[streams.per_stream."ai.signal_generated"]\nproducer = "quantum-ai-engine.service"\n'
        '[streams.per_stream."trade.intent"]\nproducer = "quantum-intent.service"\n'
        'stale_after_sec = 10800\n[streams.per_stream."execution.result"]\n'
        'producer = "quantum-intent.service"\n'
    )
    report = run_doctor(load_config(None, flags={"doctor.select": "QT402"}))
    found = {f.subject: (f.cause, f.message) for f in report.findings}
    assert found == {
        f"{P}ai.signal_generated": (
            "silent-producer",
            "newest entry is 2.0 h old (limit 1.0 h); "
            "producer quantum-ai-engine.service is active yet writes nothing",
        ),
        f"{P}execution.result": (
            "producer-down",
            "newest entry is 2.0 h old (limit 1.0 h); producer quantum-intent.service is failed",
        ),
    }  # trade.intent's own limit is 3 h
