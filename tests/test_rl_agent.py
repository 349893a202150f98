"""The RL agent against a real redis-server: only valid closed trades become experiences, the
rest are dead-lettered with the reason; kill -9 and restart count nothing twice and lose
nothing; checkpoints survive corruption and a full disk."""

from __future__ import annotations

import contextlib
import json
import math
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import redis
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from qtctl.daemons.rl_agent import checkpoint
from qtctl.daemons.rl_agent.daemon import parse_sources
from qtctl.daemons.rl_agent.records import Rejected, experience
from tests.conftest import REPO
from tests.support.redis_server import RedisServer

STREAM = "quantum:stream:trade.closed"
SOURCES = parse_sources(("*=pnl_percent:percent",))


def trade(i: int, rng: random.Random) -> dict[str, str]:
    side = rng.choice(["LONG", "SHORT"])
    entry = rng.uniform(10, 1000)
    exit_ = entry * (1 + rng.choice([-1, 1]) * rng.uniform(0.002, 0.03))  # never ~0: see GARBAGE
    pnl = (1 if side == "LONG" else -1) * (exit_ - entry) / entry * 100
    return {
        "event_type": "trade.closed",
        "timestamp": str(1_790_000_000 + i),
        "symbol": rng.choice(["BTCUSDT", "ETHUSDT", "SOLUSDT"]),
        "side": side,
        "entry_price": f"{entry:.6f}",
        "exit_price": f"{exit_:.6f}",
        "pnl_percent": f"{pnl:.6f}",
        "source": "executor",
        "order_id": f"o{i}",
        "confidence": f"{rng.random():.3f}",
    }


GARBAGE = [
    ({"pnl_percent": "-100.0", "exit_price": "0"}, "bad-price"),  # the old daemon's food
    ({"pnl_percent": "0.00"}, "pnl-inconsistent"),
    ({"source": "qtctl-rl-agent"}, "own-output"),
    ({"symbol": "TESTUSDT"}, "test-record"),
    ({"entry_price": "nan"}, "not-finite"),
    ({"side": "FLAT"}, "bad-side"),
    ({"pnl_percent": ""}, "missing-field"),
]


def test_validation_rejects_garbage_with_its_reason() -> None:
    rng = random.Random(1)
    good = trade(0, rng)
    assert math.isclose(experience(good, SOURCES).pnl_pct, float(good["pnl_percent"]), abs_tol=1e-4)
    for change, reason in GARBAGE:
        try:
            experience({**good, **change}, SOURCES)
        except Rejected as why:
            assert why.reason == reason, (change, why)
        else:
            raise AssertionError(f"{change} was accepted")
    strict = parse_sources(("executor=pnl_percent:percent",))
    try:
        experience({**good, "source": "manual-lane"}, strict)
    except Rejected as why:
        assert why.reason == "unknown-source"
    fraction = parse_sources(("*=pnl:fraction",))
    scaled = {**good, "pnl": str(float(good["pnl_percent"]) / 100)}
    assert math.isclose(
        experience(scaled, fraction).pnl_pct, float(good["pnl_percent"]), abs_tol=1e-4
    )


@settings(max_examples=10_000, deadline=None)
@given(st.dictionaries(st.sampled_from(list(trade(0, random.Random(0)))), st.text(max_size=30)))
def test_fuzzed_records_never_crash_validation(fields: dict[str, str]) -> None:
    base = trade(0, random.Random(2))
    with contextlib.suppress(Rejected):  # the only way out besides a valid experience
        experience({**base, **fields}, SOURCES)


def agent(config: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "qtctl", "--config", str(config), "run", "rl-agent"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )


def write_config(tmp_path: Path, url: str) -> Path:
    config = tmp_path / "rl.toml"
    config.write_text(
        f"[redis]\nurl = '{url}'\n[rl]\nmodel_dir = '{tmp_path / 'models'}'\nstart_id = '0'\n"
        "consumer = 'rl-1'\nbatch = 64\nblock_ms = 100\ncheckpoint_every = 3\n"
        "checkpoint_every_sec = 1\nstats_every_sec = 1\n"
    )
    return config


def seed(client: redis.Redis, start: int, count: int, rng: random.Random) -> int:
    """Valid trades with one garbage record in every ten; returns how many were garbage."""
    bad = 0
    pipe = client.pipeline(transaction=False)
    for i in range(start, start + count):
        fields = trade(i, rng)
        if i % 10 == 9:
            fields.update(GARBAGE[i % len(GARBAGE)][0])
            bad += 1
        pipe.xadd(STREAM, fields)
    pipe.execute()
    return bad


def wait_counted(client: redis.Redis, total: int, timeout: float = 60) -> dict[str, str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        stats = client.hgetall("quantum:rl:agent:stats")
        done = int(stats.get("experiences", 0)) + int(stats.get("rejected", 0))
        if done >= total and not client.xpending(STREAM, "qtctl:rl-agent")["pending"]:
            return stats
        time.sleep(0.2)
    raise AssertionError(f"not all {total} counted: {client.hgetall('quantum:rl:agent:stats')}")


def test_kill_9_during_training_counts_every_record_exactly_once(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    client = redis.Redis(port=redis_server.port, decode_responses=True)
    rng = random.Random(5)
    config = write_config(tmp_path, redis_server.url)
    bad = seed(client, 0, 3000, rng)
    for round_ in range(5):
        proc = agent(config)
        time.sleep(rng.uniform(2.5, 4.0))  # torch import, resume, then some training
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        bad += seed(client, 3000 + 500 * round_, 500, rng)
    proc = agent(config)
    total = 3000 + 5 * 500
    try:
        stats = wait_counted(client, total)
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0, proc.stderr.read() if proc.stderr else ""
    stats = client.hgetall("quantum:rl:agent:stats")
    assert int(stats["experiences"]) == total - bad  # none twice, none lost
    assert int(stats["rejected"]) == bad
    dead = client.xlen("quantum:stream:trade.closed:rl-dead-letter")
    assert dead == bad  # each rejected record dead-lettered once, as it is counted once
    newest, _ = checkpoint.load_latest(tmp_path / "models")
    assert newest is not None and newest["counters"]["experiences"] == total - bad


def test_corrupt_checkpoint_is_moved_aside_and_the_previous_one_used(tmp_path: Path) -> None:
    folder = tmp_path / "models"
    checkpoint.save(folder, 1, {"step": 1, "w": torch.zeros(3)}, keep=3)
    checkpoint.save(folder, 2, {"step": 2, "w": torch.ones(3)}, keep=3)
    (folder / "ckpt-000000000002.pt").write_bytes(b"not a checkpoint")
    state, path = checkpoint.load_latest(folder)
    assert state is not None and state["step"] == 1 and path is not None
    assert (folder / "ckpt-000000000002.corrupt").exists()


def test_disk_full_while_checkpointing_keeps_the_previous_one(tmp_path: Path) -> None:
    """A 256 KiB tmpfs in a private mount namespace; the host's mounts are untouched."""
    disk = tmp_path / "disk"
    disk.mkdir()
    script = f"""
import sys, torch
sys.path.insert(0, {str(REPO)!r})
from qtctl.daemons.rl_agent import checkpoint
from pathlib import Path
folder = Path({str(disk)!r})
checkpoint.save(folder, 1, {{"w": torch.zeros(10)}}, keep=3)
try:
    checkpoint.save(folder, 2, {{"w": torch.zeros(1_000_000)}}, keep=3)
except OSError as exc:
    print("full:", exc.errno)
state, path = checkpoint.load_latest(folder)
print("loaded", path.name, state["w"].shape[0], sorted(p.name for p in folder.iterdir()))
"""
    program = tmp_path / "fill.py"
    program.write_text(script)
    res = subprocess.run(
        [
            "unshare",
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-c",
            f"mount -t tmpfs -o size=256k tmpfs {disk} && {sys.executable} {program}",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "full: 28" in res.stdout, res.stdout + res.stderr
    assert "loaded ckpt-000000000001.pt 10 ['ckpt-000000000001.pt']" in res.stdout


def test_the_same_trade_twice_is_learned_once_even_across_a_restart(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    client = redis.Redis(port=redis_server.port, decode_responses=True)
    config = write_config(tmp_path, redis_server.url)
    trades = [trade(i, random.Random(i)) for i in range(10)]
    for fields in trades:
        client.xadd(STREAM, fields)
    proc = agent(config)
    try:
        wait_counted(client, 10)
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    for fields in trades:  # a producer replays its history
        client.xadd(STREAM, fields)
    proc = agent(config)
    try:
        stats = wait_counted(client, 20)
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    assert (stats["experiences"], stats["rejected"], stats["rejected:duplicate"]) == (
        "10",
        "10",
        "10",
    )


def test_rl_stats_and_offline_evaluation_from_the_cli(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    client = redis.Redis(port=redis_server.port, decode_responses=True)
    config = write_config(tmp_path, redis_server.url)
    rng = random.Random(9)
    for i in range(300):
        fields = trade(i, rng)
        fields.update(size_multiplier=rng.choice(["0.5", "1.0", "1.5"]), action_prob="0.333")
        client.xadd(STREAM, fields)
    client.xadd(STREAM, {**trade(999, rng), "pnl_percent": "0.00"})
    proc = agent(config)
    try:
        wait_counted(client, 301)
        time.sleep(1.5)  # one more stats snapshot on the curve
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    base = [sys.executable, "-m", "qtctl", "--config", str(config)]
    res = subprocess.run(
        [*base, "rl", "stats", "--format", "json"], capture_output=True, text=True, cwd=REPO
    )
    doc = json.loads(res.stdout)
    assert doc["stats"]["experiences"] == "300" and doc["rejects"] == {"pnl-inconsistent": 1}
    assert len(doc["reward_curve"]) >= 2
    text = subprocess.run([*base, "rl", "stats"], capture_output=True, text=True, cwd=REPO)
    assert "rejected pnl-inconsistent" in text.stdout and "reward mean  " in text.stdout
    res = subprocess.run(
        [*base, "rl", "evaluate", "--format", "json"], capture_output=True, text=True, cwd=REPO
    )
    evaluation = json.loads(res.stdout)  # trades that name no logged decision: nothing to judge
    assert res.returncode == 1 and evaluation["decisions_joined"] == 0, res.stdout
    served = client.hgetall("quantum:rl:recommendation:BTCUSDT")
    assert served["probability"] == "1" and served["context_from"].startswith(f"{STREAM} ")
    assert float(doc["stats"]["reward_std_100"]) >= 0


def test_redis_restart_is_waited_out_and_nothing_is_counted_twice(tmp_path: Path) -> None:
    from tests.support.redis_server import start_redis

    server = start_redis(aof=True, extra=("--appendfsync", "always"))
    servers = [server]
    try:
        client = redis.Redis(port=server.port, decode_responses=True)
        config = write_config(tmp_path, server.url)
        rng = random.Random(4)
        bad = seed(client, 0, 400, rng)
        proc = agent(config)
        wait_counted(client, 400)
        server.kill()
        time.sleep(1.5)  # the agent backs off meanwhile
        servers.append(start_redis(aof=True, port=server.port, workdir=server.workdir))
        client = redis.Redis(port=server.port, decode_responses=True)
        deadline = time.monotonic() + 20
        while True:
            try:
                client.ping()
                break
            except redis.RedisError:
                assert time.monotonic() < deadline
                time.sleep(0.1)
        bad += seed(client, 400, 200, rng)
        stats = wait_counted(client, 600)
        assert proc.poll() is None  # the same process, no crash loop
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=20)
        assert proc.returncode == 0
        assert int(stats["experiences"]) == 600 - bad and int(stats["rejected"]) == bad
        assert "Redis unavailable during work" in err and "Redis back after" in err
    finally:
        for started in servers:
            started.stop()


def test_rl_rewards_from_mapped_scales_are_learned_and_garbage_rejected(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    from qtctl.daemons.rl_agent.records import parse_reward_scales, reward_experience

    scales = parse_reward_scales(("*=reward:unit", "legacy=reward_pct:percent"))
    state = json.dumps({"confidence": 0.7, "regime": "trend", "order_id": "o1"})
    ok = reward_experience({"symbol": "BTCUSDT", "reward": "0.3", "state": state}, scales)
    assert ok.pnl_pct == 30.0 and ok.features[0] == 0.7 and ok.trade_id == "r:o1"
    legacy = {"symbol": "BTCUSDT", "reward_pct": "-40", "source": "legacy", "state": "{}"}
    assert reward_experience(legacy, scales).pnl_pct == -40.0
    for fields, reason in [
        ({"symbol": "BTCUSDT", "reward": "30"}, "reward-out-of-range"),
        ({"symbol": "BTCUSDT", "reward": "0.1", "state": "{oops"}, "bad-state"),
        ({"symbol": "BTCUSDT", "reward": "0.1", "source": "qtctl-rl-agent"}, "own-output"),
        ({"reward": "0.1"}, "missing-field"),
    ]:
        try:
            reward_experience(fields, scales)
        except Rejected as why:
            assert why.reason == reason
        else:
            raise AssertionError(fields)

    client = redis.Redis(port=redis_server.port, decode_responses=True)
    config = write_config(tmp_path, redis_server.url)
    for i in range(5):
        state = json.dumps({"order_id": f"r{i}", "confidence": 0.5})
        client.xadd(
            "quantum:stream:rl_rewards", {"symbol": "ETHUSDT", "reward": "0.2", "state": state}
        )
    client.xadd("quantum:stream:rl_rewards", {"symbol": "ETHUSDT", "reward": "-7"})
    proc = agent(config)
    try:
        deadline = time.monotonic() + 60
        while client.hget("quantum:rl:agent:stats", "experiences") != "5":
            assert time.monotonic() < deadline, client.hgetall("quantum:rl:agent:stats")
            time.sleep(0.2)
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    stats = client.hgetall("quantum:rl:agent:stats")
    assert stats["rejected:reward-out-of-range"] == "1"
    assert client.xpending("quantum:stream:rl_rewards", "qtctl:rl-agent")["pending"] == 0


def test_orphans_of_a_dead_consumer_are_claimed_and_garbage_never_crashes_the_agent(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    client = redis.Redis(port=redis_server.port, decode_responses=True)
    client.xgroup_create(STREAM, "qtctl:rl-agent", id="0", mkstream=True)
    client.xgroup_create("quantum:stream:rl_rewards", "qtctl:rl-agent", id="0", mkstream=True)
    rng = random.Random(8)
    for i in range(50):
        client.xadd(STREAM, trade(i, rng))
    client.xreadgroup("qtctl:rl-agent", "rl-dead-host", {STREAM: ">"}, count=50)  # then it died
    junk = [
        {rng.choice(["side", "symbol", "entry_price", "exit_price", "pnl_percent", "x"]): v}
        for v in (
            rng.choice(["", "nan", "-1", "1e309", "\x00", "LONG", "x" * 2000]) for _ in range(2000)
        )
    ]
    pipe = client.pipeline(transaction=False)
    for fields in junk:
        pipe.xadd(STREAM, fields)
    pipe.execute()
    config = write_config(tmp_path, redis_server.url)
    config.write_text(config.read_text() + "claim_idle_sec = 1\n")
    time.sleep(1.1)
    proc = agent(config)
    try:
        stats = wait_counted(client, 2050)
        assert proc.poll() is None
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=20)
    assert (stats["experiences"], stats["rejected"]) == ("50", "2000")
    assert "claimed 50 entries orphaned by a dead consumer" in err
    dead = client.xrange("quantum:stream:trade.closed:rl-dead-letter")
    assert len(dead) == 2000 and all(f["reason"] for _, f in dead)


def test_once_learns_the_whole_backlog_before_it_exits(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    client = redis.Redis(port=redis_server.port, decode_responses=True)
    config = write_config(tmp_path, redis_server.url)
    bad = seed(client, 0, 5000, random.Random(12))
    res = subprocess.run(
        [sys.executable, "-m", "qtctl", "--config", str(config), "run", "rl-agent", "--once"],
        capture_output=True, text=True, cwd=REPO, timeout=120,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr[-2000:]
    stats = client.hgetall("quantum:rl:agent:stats")
    assert (int(stats["experiences"]), int(stats["rejected"])) == (5000 - bad, bad)
    assert client.xpending(STREAM, "qtctl:rl-agent")["pending"] == 0
    assert client.xlen("quantum:stream:trade.closed:rl-dead-letter") == bad


def test_dead_letters_are_written_exactly_once_across_kill_9(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    client = redis.Redis(port=redis_server.port, decode_responses=True)
    config = write_config(tmp_path, redis_server.url)
    config.write_text(config.read_text().replace("batch = 64", "batch = 8"))
    rng = random.Random(21)
    pipe = client.pipeline(transaction=False)
    for i in range(1200):  # 1,000 valid, 200 garbage, interleaved
        fields = trade(i, rng)
        if i % 6 == 5:
            fields.update(GARBAGE[i % len(GARBAGE)][0])
        pipe.xadd(STREAM, fields)
    pipe.execute()
    proc = agent(config)
    deadline = time.monotonic() + 60
    while not client.hget("quantum:rl:agent:stats", "experiences"):  # the first commit
        assert time.monotonic() < deadline
        time.sleep(0.005)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done = client.hgetall("quantum:rl:agent:stats")
    assert int(done["experiences"]) + int(done["rejected"]) < 1200  # killed mid-run
    proc = agent(config)
    try:
        stats = wait_counted(client, 1200)
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    assert (stats["experiences"], stats["rejected"]) == ("1000", "200")
    dead = client.xrange("quantum:stream:trade.closed:rl-dead-letter")
    assert len(dead) == 200 and len({f["source_id"] for _, f in dead}) == 200
