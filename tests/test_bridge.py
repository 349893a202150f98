"""`qtctl run bridge` on a real redis-server: every source entry lands in the destination
exactly once, in order, with its ID, whatever is done to the bridge or to Redis."""

from __future__ import annotations

import json
import os
import random
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tests.conftest import REPO
from tests.support.redis_server import RedisServer, start_redis

SRC, DST = "quantum:stream:execution.result", "quantum:stream:trade.execution.result"
STATE = f"quantum:qtctl:bridge:{SRC}"


def write_config(path: Path, url: str, extra: str = "") -> Path:
    path.write_text(
        f"[redis]\nurl = '{url}'\nsocket_timeout = 1.0\n[bridge]\nstart_id = '0'\n"
        f"allow_no_readers = ['trade.execution.result']\nblock_ms = 100\n{extra}"
    )
    return path


def run_once(config: Path) -> subprocess.CompletedProcess[str]:
    """`qtctl run bridge --once` as an operator would type it."""
    return subprocess.run(
        [sys.executable, "-m", "qtctl", "--config", str(config), "run", "bridge", "--once"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
    )


class BridgeProcess:
    """`python -m qtctl run bridge` as its unit runs it; stderr kept for the assertions."""

    def __init__(self, config: Path, *args: str) -> None:
        self.log = config.with_suffix(f".{time.monotonic_ns()}.log")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "qtctl", "--config", str(config), "run", "bridge", *args],
            stdout=subprocess.DEVNULL,
            stderr=open(self.log, "w"),  # noqa: SIM115 - the child owns it
            cwd=REPO,
        )

    def stderr(self) -> str:
        return self.log.read_text()

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10) -> int:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, sig)
        return self.proc.wait(timeout=timeout)


@pytest.fixture
def bridges() -> Iterator[list[BridgeProcess]]:
    started: list[BridgeProcess] = []
    yield started
    for bridge in started:
        bridge.stop(signal.SIGKILL)


def ids(client: redis.Redis, key: str) -> list[str]:
    """Every entry ID of a stream, read in chunks."""
    out: list[str] = []
    start = "-"
    while True:
        chunk = client.xrange(key, min=start, max="+", count=50_000)
        out += [e.decode() if isinstance(e, bytes) else e for e, _ in chunk]
        if len(chunk) < 50_000:
            return out
        start = f"({chunk[-1][0]}"


def wait_until(check: object, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return
        time.sleep(0.05)
    raise AssertionError("condition not reached in time")


def seed(client: redis.Redis, count: int) -> None:
    script = (
        "for i=1,tonumber(ARGV[1]) do redis.call('XADD', KEYS[1], '*', 'symbol', 'BTCUSDT', "
        "'status', 'FILLED', 'i', i) end"
    )
    for start in range(0, count, 100_000):
        client.eval(script, 1, SRC, min(100_000, count - start))


def test_copies_in_order_with_source_ids_and_fields(
    redis_server: RedisServer, tmp_path: Path, bridges: list[BridgeProcess]
) -> None:
    client = redis.Redis(port=redis_server.port, decode_responses=True)
    seed(client, 5_000)
    client.xadd(SRC, {"raw": "\xff"}, id="*")  # decoded text here; bytes below
    raw = redis.Redis(port=redis_server.port)
    raw.xadd(SRC, {b"payload": b"\xff\xfe not utf-8 \x00"})
    config = write_config(tmp_path / "b.toml", redis_server.url)
    res = run_once(config)
    assert res.returncode == 0, res.stderr
    assert raw.xrange(DST) == raw.xrange(SRC)  # IDs, order, and bytes
    state = client.hgetall(STATE)
    assert state["bridged"] == "5002" and state["position"] == ids(raw, SRC)[-1]
    assert "new, starting after 0-0 (bridge.start_id)" in res.stderr


def test_kill_9_twenty_times_during_a_million_entries_loses_and_duplicates_nothing(
    redis_server: RedisServer, tmp_path: Path, bridges: list[BridgeProcess]
) -> None:
    client = redis.Redis(port=redis_server.port, decode_responses=True)
    seed(client, 1_000_000)
    config = write_config(tmp_path / "b.toml", redis_server.url)
    producing = threading.Event()
    producing.set()

    def producer() -> None:
        writer = redis.Redis(port=redis_server.port)
        while producing.is_set():
            writer.xadd(SRC, {"live": "1"})
            time.sleep(0.001)

    thread = threading.Thread(target=producer)
    thread.start()
    rng = random.Random(7)
    try:
        for _ in range(20):
            bridge = BridgeProcess(config)
            bridges.append(bridge)
            time.sleep(rng.uniform(0.4, 0.9))  # start-up plus a random share of work
            bridge.stop(signal.SIGKILL)
        bridge = BridgeProcess(config)
        bridges.append(bridge)
        time.sleep(1.0)
    finally:
        producing.clear()
        thread.join()
    wait_until(lambda: client.xlen(DST) == client.xlen(SRC), timeout=60)
    assert bridge.stop() == 0
    source, dest = ids(client, SRC), ids(client, DST)
    assert len(source) > 1_000_000
    assert dest == source  # none lost, none twice, same order


def test_two_instances_on_one_route_copy_each_entry_once(
    redis_server: RedisServer, tmp_path: Path, bridges: list[BridgeProcess]
) -> None:
    client = redis.Redis(port=redis_server.port, decode_responses=True)
    seed(client, 200_000)
    config = write_config(tmp_path / "b.toml", redis_server.url, "batch_max = 200\n")
    bridges += [BridgeProcess(config), BridgeProcess(config)]
    wait_until(lambda: client.xlen(DST) == 200_000)
    assert [b.stop() for b in bridges] == [0, 0]
    assert ids(client, DST) == ids(client, SRC)
    assert client.hget(STATE, "bridged") == "200000"


def test_sigterm_under_load_exits_0_within_2_s(
    redis_server: RedisServer, tmp_path: Path, bridges: list[BridgeProcess]
) -> None:
    client = redis.Redis(port=redis_server.port, decode_responses=True)
    seed(client, 300_000)
    bridge = BridgeProcess(write_config(tmp_path / "b.toml", redis_server.url))
    bridges.append(bridge)
    wait_until(lambda: client.xlen(DST) > 50_000)
    started = time.monotonic()
    assert bridge.stop(signal.SIGTERM) == 0
    assert time.monotonic() - started < 2.0
    copied = ids(client, DST)
    assert copied == ids(client, SRC)[: len(copied)]  # nothing half-done
    assert client.hget(STATE, "position") == copied[-1]
    assert "bridge stopping" in bridge.stderr()


def test_poison_entries_go_to_the_dead_letter_stream_with_the_reason(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    client = redis.Redis(port=redis_server.port, decode_responses=True)
    good = client.xadd(SRC, {"order_id": "1", "status": "FILLED"})
    missing = client.xadd(SRC, {"status": "FILLED"})
    huge = client.xadd(SRC, {"order_id": "2", "payload": "x" * 1_048_576})
    last = client.xadd(SRC, {"order_id": "3"})
    config = write_config(tmp_path / "b.toml", redis_server.url, "require_fields = ['order_id']\n")
    res = run_once(config)
    assert res.returncode == 0, res.stderr
    assert ids(client, DST) == [good, last]
    dead = [f for _, f in client.xrange(f"{SRC}:dead-letter")]
    assert [(f["source_id"], f["reason"]) for f in dead] == [
        (missing, "missing field order_id"),
        (huge, "entry of 1048592 bytes over 524288"),
    ]
    assert "2 poison entries moved to" in res.stderr
    assert client.hget(STATE, "dead_lettered") == "2"


@pytest.mark.parametrize(
    ("key", "message"),
    [
        (f"{SRC}:dead-letter", f"the dead-letter key {SRC}:dead-letter is a string, not a stream"),
        (STATE, f"the route's state key {STATE} is a string, not a hash"),
    ],
)
def test_a_wrong_type_key_the_copy_writes_stops_it_before_anything_is_copied(
    redis_server: RedisServer, tmp_path: Path, key: str, message: str
) -> None:
    """A script is not rolled back: a write failing midway (XADD to a dead-letter key that is a
    string) used to leave entries copied with the position unmoved, and every later run then
    stopped on them as a 'foreign writer'."""
    client = redis.Redis(port=redis_server.port, decode_responses=True)
    sent = [client.xadd(SRC, {"order_id": "1"}), client.xadd(SRC, {"status": "no id"})]
    sent.append(client.xadd(SRC, {"order_id": "3"}))
    client.set(key, "left by someone")
    config = write_config(tmp_path / "b.toml", redis_server.url, "require_fields = ['order_id']\n")
    res = run_once(config)
    assert res.returncode == 1
    assert message in res.stderr, res.stderr
    assert "Traceback" not in res.stderr
    assert not client.exists(DST)
    client.delete(key)
    assert run_once(config).returncode == 0
    assert ids(client, DST) == [sent[0], sent[2]]
    assert [f["source_id"] for _, f in client.xrange(f"{SRC}:dead-letter")] == [sent[1]]


def test_redis_at_maxmemory_is_waited_out_then_every_entry_copied_once(
    redis_server: RedisServer, tmp_path: Path, bridges: list[BridgeProcess]
) -> None:
    client = redis.Redis(port=redis_server.port, decode_responses=True)
    seed(client, 500)
    client.config_set("maxmemory", "1")  # every write refused with OOM; reads still work
    bridge = BridgeProcess(write_config(tmp_path / "b.toml", redis_server.url))
    bridges.append(bridge)
    wait_until(lambda: "command not allowed when used memory > 'maxmemory'" in bridge.stderr())
    time.sleep(1.5)  # a few retries
    assert bridge.proc.poll() is None, bridge.stderr()
    assert not client.exists(DST)
    client.config_set("maxmemory", "0")
    wait_until(lambda: client.exists(DST) and client.xlen(DST) == 500)
    assert ids(client, DST) == ids(client, SRC)
    assert bridge.stop() == 0
    log = bridge.stderr()
    assert "Redis back after" in log
    assert "Traceback" not in log


def test_script_cache_flushed_mid_run_is_reloaded(
    redis_server: RedisServer, tmp_path: Path, bridges: list[BridgeProcess]
) -> None:
    client = redis.Redis(port=redis_server.port, decode_responses=True)
    seed(client, 10)
    bridge = BridgeProcess(write_config(tmp_path / "b.toml", redis_server.url))
    bridges.append(bridge)
    wait_until(lambda: client.exists(DST) and client.xlen(DST) == 10)
    client.script_flush()
    seed(client, 10)
    wait_until(lambda: client.xlen(DST) == 20)
    assert ids(client, DST) == ids(client, SRC)
    assert bridge.stop() == 0
    assert "Traceback" not in bridge.stderr()


def test_source_trimmed_past_the_bridge_is_a_counted_logged_gap(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    client = redis.Redis(port=redis_server.port, decode_responses=True)
    seed(client, 100)
    config = write_config(tmp_path / "b.toml", redis_server.url)
    once = [sys.executable, "-m", "qtctl", "--config", str(config), "run", "bridge", "--once"]
    assert subprocess.run(once, capture_output=True, cwd=REPO, timeout=60).returncode == 0
    seed(client, 100)
    before = ids(client, SRC)[100:]
    client.xtrim(SRC, maxlen=30, approximate=False)  # 70 new entries never bridged
    res = subprocess.run(once, capture_output=True, text=True, cwd=REPO, timeout=60)
    assert res.returncode == 0
    assert "source trimmed past the bridge: 70 entries after" in res.stderr
    assert client.hget(STATE, "lost") == "70"
    assert ids(client, DST)[100:] == before[70:]


def test_destination_deleted_mid_run_is_recreated_and_reported(
    redis_server: RedisServer, tmp_path: Path, bridges: list[BridgeProcess]
) -> None:
    client = redis.Redis(port=redis_server.port, decode_responses=True)
    seed(client, 10)
    bridge = BridgeProcess(write_config(tmp_path / "b.toml", redis_server.url))
    bridges.append(bridge)
    wait_until(lambda: client.xlen(DST) == 10)
    client.delete(DST)
    new = client.xadd(SRC, {"i": "after"})
    wait_until(lambda: client.exists(DST) and ids(client, DST) == [new])
    assert bridge.stop() == 0
    assert f"destination {DST} was deleted; re-creating it" in bridge.stderr()


def test_missing_source_waits_and_starts_when_it_appears(
    redis_server: RedisServer, tmp_path: Path, bridges: list[BridgeProcess]
) -> None:
    client = redis.Redis(port=redis_server.port, decode_responses=True)
    bridge = BridgeProcess(write_config(tmp_path / "b.toml", redis_server.url))
    bridges.append(bridge)
    wait_until(lambda: "does not exist yet" in bridge.stderr())
    first = client.xadd(SRC, {"i": "1"})
    wait_until(lambda: client.exists(DST) and ids(client, DST) == [first])
    assert bridge.stop() == 0
    assert bridge.stderr().count("does not exist yet") == 1


@pytest.mark.parametrize(
    ("prepare", "message"),
    [
        (lambda c: c.set(DST, "x"), f"destination {DST} is a string, not a stream"),
        (
            lambda c: (c.xadd(SRC, {"i": "1"}, id="1-1"), c.xadd(DST, {"i": "x"}, id="5-1")),
            f"another writer added {DST} entries up to 5-1, beyond this bridge's position",
        ),
        (
            lambda c: c.xadd("quantum:stream:trade.execution.res", {"i": "1"}),
            f"destination {DST} is a near-miss of existing stream(s) "
            "quantum:stream:trade.execution.res",
        ),
    ],
)
def test_refusals_exit_1_with_a_clear_reason(
    redis_server: RedisServer, tmp_path: Path, prepare: object, message: str
) -> None:
    client = redis.Redis(port=redis_server.port, decode_responses=True)
    prepare(client)  # type: ignore[operator]
    config = write_config(tmp_path / "b.toml", redis_server.url)
    res = run_once(config)
    assert res.returncode == 1
    assert message in res.stderr, res.stderr


def test_destination_nobody_reads_is_refused_unless_acknowledged(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    config = tmp_path / "b.toml"
    config.write_text(f"[redis]\nurl = '{redis_server.url}'\n")
    res = run_once(config)
    assert res.returncode == 1
    assert f"no consumer group reads destination {DST}" in res.stderr


def test_fan_out_during_a_rename_feeds_both_names(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    client = redis.Redis(port=redis_server.port, decode_responses=True)
    old = "quantum:stream:trade.execution.res"
    client.xgroup_create(old, "quantum:group:exit-monitor", id="$", mkstream=True)
    client.xgroup_create(DST, "quantum:group:exporter", id="$", mkstream=True)
    seed(client, 50)
    config = write_config(
        tmp_path / "b.toml",
        redis_server.url,
        "routes = ['execution.result->trade.execution.res|trade.execution.result']\n",
    )
    res = run_once(config)
    assert res.returncode == 0, res.stderr
    assert ids(client, old) == ids(client, DST) == ids(client, SRC)


def test_redis_killed_and_restarted_with_aof_loses_nothing(
    tmp_path: Path, bridges: list[BridgeProcess]
) -> None:
    server = start_redis(aof=True, extra=("--appendfsync", "always"))
    servers = [server]
    try:
        client = redis.Redis(port=server.port, decode_responses=True)
        seed(client, 20_000)
        bridge = BridgeProcess(write_config(tmp_path / "b.toml", server.url))
        bridges.append(bridge)
        wait_until(lambda: client.xlen(DST) == 20_000)
        server.kill()
        time.sleep(1.5)  # the bridge backs off meanwhile
        servers.append(start_redis(aof=True, port=server.port, workdir=server.workdir))
        client = redis.Redis(port=server.port, decode_responses=True)
        wait_until(lambda: _ping(client))
        seed(client, 5_000)
        wait_until(lambda: client.xlen(DST) == 25_000)
        assert bridge.proc.poll() is None  # no crash loop: the same process
        assert bridge.stop() == 0
        assert ids(client, DST) == ids(client, SRC)
        log = bridge.stderr()
        assert "Redis unavailable during work" in log and "retrying in" in log
        assert "Redis back after" in log
    finally:
        for started in servers:
            started.stop()


@pytest.mark.parametrize("snapshot", [True, False], ids=["older-snapshot", "no-persistence"])
def test_redis_coming_back_with_older_data_is_said_and_then_bridged_exactly(
    tmp_path: Path, bridges: list[BridgeProcess], snapshot: bool
) -> None:
    """Nothing is lost beyond what Redis lost, and the bridge says what that was: a restart
    from an RDB snapshot rolls the source, the destination and the position back together."""
    server = start_redis()
    servers = [server]
    try:
        client = redis.Redis(port=server.port, decode_responses=True)
        seed(client, 1_000)
        bridge = BridgeProcess(write_config(tmp_path / "b.toml", server.url))
        bridges.append(bridge)
        wait_until(lambda: client.exists(DST) and client.xlen(DST) == 1_000)
        if snapshot:
            client.save()
        saved = ids(client, SRC)[-1]
        seed(client, 500)
        wait_until(lambda: client.xlen(DST) == 1_500)
        newest = ids(client, SRC)[-1]
        server.kill()
        servers.append(start_redis(port=server.port, workdir=server.workdir))
        client = redis.Redis(port=server.port, decode_responses=True)
        wait_until(lambda: _ping(client))
        assert client.xlen(SRC) == (1_000 if snapshot else 0)
        seed(client, 200)
        wait_until(lambda: client.exists(DST) and ids(client, DST) == ids(client, SRC))
        assert bridge.proc.poll() is None
        assert bridge.stop() == 0
        log = bridge.stderr()
        if snapshot:
            assert f"the bridge's position went back from {newest} to {saved}" in log, log
        else:
            assert f"the bridge's state vanished from Redis (its position was {newest})" in log
        assert "Traceback" not in log
    finally:
        for started in servers:
            started.stop()


def _ping(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False


def test_qt503_reads_the_bridges_position_so_dead_letters_are_not_lag(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    client = redis.Redis(port=redis_server.port, decode_responses=True)
    client.xadd(SRC, {"order_id": "1"})
    client.xadd(SRC, {"no_order": "x"})  # the newest entry is poison
    config = write_config(
        tmp_path / "b.toml",
        redis_server.url,
        "require_fields = ['order_id']\n[daemons]\nbridge_lag_warn = 1\n",
    )
    base = [sys.executable, "-m", "qtctl", "--config", str(config)]
    run = subprocess.run([*base, "run", "bridge", "--once"], capture_output=True, cwd=REPO)
    assert run.returncode == 0
    doctor = subprocess.run(
        [*base, "--format", "json", "doctor", "--select", "QT503"],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert json.loads(doctor.stdout)["findings"] == []
    client.xadd(SRC, {"order_id": "2"})  # now one is really waiting
    doctor = subprocess.run(
        [*base, "--format", "json", "doctor", "--select", "QT503"],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    [finding] = json.loads(doctor.stdout)["findings"]
    assert finding["message"].startswith("1 source entries not bridged yet")


def test_route_options_rename_keep_match_and_retention(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    client = redis.Redis(port=redis_server.port, decode_responses=True)
    old = int(time.time() * 1000) - 7_200_000
    pipe = client.pipeline(transaction=False)
    for i in range(300):  # two hours old: past max_age_sec
        pipe.xadd(SRC, {"status": "FILLED", "sym": "OLD", "debug": "x"}, id=f"{old + i}-0")
    for i in range(200):
        pipe.xadd(SRC, {"status": "FILLED", "sym": f"S{i}", "debug": "x"})
    pipe.xadd(SRC, {"status": "REJECTED", "sym": "ETHUSDT", "debug": "x"})
    pipe.execute()
    new = [i for i, f in client.xrange(SRC) if f["sym"] not in ("OLD", "ETHUSDT")]
    config = write_config(
        tmp_path / "b.toml",
        redis_server.url,
        '[bridge.per_route."execution.result"]\nrename = ["sym=symbol"]\n'
        'keep_fields = ["status", "sym"]\nmatch = ["status=FILLED"]\nmax_age_sec = 3600\n',
    )
    res = run_once(config)
    assert res.returncode == 0, res.stderr
    dest = client.xrange(DST)
    assert all(f == {"status": "FILLED", "symbol": f["symbol"]} for _, f in dest)
    assert [i for i, _ in dest][-200:] == new  # every new FILLED entry, renamed and filtered
    # MINID ~ removes whole macro nodes only: most of the 300 old entries are gone.
    assert sum(1 for _, f in dest if f["symbol"] == "OLD") < 150
    state = client.hgetall(STATE)
    assert (state["filtered"], state["bridged"], state["lag"]) == ("1", "500", "0")


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ('rename = ["nope"]', "expected 'field=value' items, got 'nope'"),
        ("maxlen = -1", "expected a number >= 0"),
        ("colour = ['x']", "unknown route option"),
    ],
)
def test_bad_route_options_are_config_errors(tmp_path: Path, table: str, message: str) -> None:
    config = tmp_path / "b.toml"
    config.write_text(f'[bridge.per_route."execution.result"]\n{table}\n')
    res = run_once(config)
    assert res.returncode == 2
    assert 'bridge.per_route."execution.result".' in res.stderr and message in res.stderr


def _peak_rss_kib(config: Path) -> int:
    """Peak resident memory of one `qtctl run bridge --once`, from the kernel's own account."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "qtctl", "--config", str(config), "run", "bridge", "--once"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=REPO,
    )
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    assert proc.returncode == 0
    return int(usage.ru_maxrss)


def test_memory_is_bounded_by_the_batch_not_the_backlog(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    client = redis.Redis(port=redis_server.port)
    payload = "x" * 200
    script = (
        "for i=1,tonumber(ARGV[1]) do redis.call('XADD', KEYS[1], '*', 'symbol', 'BTCUSDT', "
        "'payload', ARGV[2], 'i', i) end"
    )
    config = write_config(tmp_path / "b.toml", redis_server.url)
    client.eval(script, 1, SRC, 5_000, payload)
    small = _peak_rss_kib(config)
    for _ in range(3):  # 300,000 entries more, about 70 MiB of fields
        client.eval(script, 1, SRC, 100_000, payload)
    large = _peak_rss_kib(config)
    assert client.xlen(DST) == 305_000
    assert large - small < 8 * 1024, (small, large)
    lua = int(client.info("memory")["used_memory_lua"])
    assert lua < 16 * 1024 * 1024, lua


def _drain_in_process(server: RedisServer, budget: int) -> list[int]:
    """Entries handled by each copy call, draining the backlog with the Bridge in-process."""
    from qtctl.config import load_config
    from qtctl.daemons.bridge.daemon import Bridge

    config = load_config(
        None,
        env={
            "QTCTL__REDIS__URL": server.url,
            "QTCTL__BRIDGE__START_ID": "0",
            "QTCTL__BRIDGE__ALLOW_NO_READERS": "trade.execution.result",
            "QTCTL__BRIDGE__BATCH_MAX_BYTES": str(budget),
            "QTCTL__BRIDGE__BLOCK_MS": "10",
        },
    )
    bridge = Bridge(config)
    bridge.setup()
    calls: list[int] = []
    try:
        while bridge.step():
            calls.append(bridge.states[0].batches[-1])
        calls.append(bridge.states[0].batches[-1])
    finally:
        bridge.close()
    return calls


@pytest.mark.parametrize(
    ("sizes", "bound"),
    [
        ([200_000] * 150, 1),  # never more than the budget plus the entry that crosses it
        ([random.Random(7).choice((100, 2_000, 60_000, 250_000)) for _ in range(400)], 3),
    ],
    ids=["uniform", "mixed"],
)
def test_large_entries_are_copied_in_calls_bounded_by_the_byte_budget(
    redis_server: RedisServer, sizes: list[int], bound: int
) -> None:
    """A backlog of large entries is not read 1,000 at a time into the script (tens of MB inside
    Redis in one blocking call, growing with the batch): each call stops at the byte budget."""
    client = redis.Redis(port=redis_server.port)
    for size in sizes:
        client.xadd(SRC, {"order_id": "1", "payload": b"x" * size})
    budget = 2 * 1024 * 1024
    calls = _drain_in_process(redis_server, budget)
    assert ids(client, DST) == ids(client, SRC)
    assert sum(calls) == len(sizes)
    start, per_call = 0, []
    for moved in calls:
        per_call.append(sum(len("order_id1payload") + s for s in sizes[start : start + moved]))
        start += moved
    largest = max(sizes) + len("order_id1payload")
    assert max(per_call) <= (budget + largest if bound == 1 else bound * budget), per_call
    assert statistics.median(per_call) <= budget + largest
