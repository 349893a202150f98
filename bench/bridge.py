"""Bridge backlog throughput and live latency, against Redis' own write ceiling and a naive loop.

All three run against one redis-server started here, in this script:
- qtctl's bridge draining a backlog (the Bridge daemon's own step loop, in-process);
- `redis-benchmark` XADD with pipelining (-P 64): the raw write ceiling of the same Redis;
- a naive bridge: XREAD one entry, XADD it, one round trip each (what the fleet ran).
Live latency: a producer XADDs at 5,000 entries/s for 3 s while the bridge runs in a thread;
the delay from each source XADD to its appearance in the destination (read back by ID).
"""

from __future__ import annotations

import json
import re
import statistics
import subprocess
import sys
import time

import redis

from bench.harness import Comparison
from qtctl.config import load_config

BACKLOG = 1_000_000
NAIVE = 20_000
FIELDS = {"symbol": "BTCUSDT", "side": "LONG", "qty": "0.010", "price": "106123.5", "ok": "1"}


def _seed(client: redis.Redis, key: str, count: int) -> None:
    script = (
        "for i=1,tonumber(ARGV[1]) do redis.call('XADD', KEYS[1], '*', 'symbol', 'BTCUSDT', "
        "'side', 'LONG', 'qty', '0.010', 'price', '106123.5', 'ok', '1') end"
    )
    for _ in range(count // 100_000):
        client.eval(script, 1, key, 100_000)
    client.eval(script, 1, key, count % 100_000)


def _bridge(url: str, source: str, dest: str) -> object:
    from qtctl.daemons.bridge.daemon import Bridge

    config = load_config(
        None,
        env={
            "QTCTL__REDIS__URL": url,
            "QTCTL__BRIDGE__ROUTES": f"{source}->{dest}",
            "QTCTL__BRIDGE__START_ID": "0",
            "QTCTL__BRIDGE__ALLOW_NO_READERS": dest,
            "QTCTL__BRIDGE__BLOCK_MS": "1",  # the drain ends with one idle wait: keep it short
        },
    )
    bridge = Bridge(config)
    bridge.setup()
    return bridge


def backlog_rate(url: str, client: redis.Redis) -> float:
    """Entries/s draining the seeded `bench:src` into a fresh destination and route."""
    client.delete("bench:dst", "quantum:qtctl:bridge:bench:src")
    bridge = _bridge(url, "bench:src", "bench:dst")
    started = time.perf_counter()
    while bridge.step():  # type: ignore[attr-defined]
        pass
    elapsed = time.perf_counter() - started
    bridge.close()  # type: ignore[attr-defined]
    assert client.xlen("bench:dst") == BACKLOG
    client.delete("bench:dst", "quantum:qtctl:bridge:bench:src")
    return BACKLOG / elapsed


def benchmark_rate(port: int) -> float:
    out = subprocess.run(
        [
            "redis-benchmark",
            "-p",
            str(port),
            "-n",
            str(BACKLOG),
            "-P",
            "64",
            "-q",
            "XADD",
            "bench:raw",
            "*",
            "symbol",
            "BTCUSDT",
            "side",
            "LONG",
            "qty",
            "0.010",
            "price",
            "106123.5",
            "ok",
            "1",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rates = re.findall(r"([0-9.]+) requests per second", out.replace(",", ""))
    return float(rates[-1])


def naive_rate(client: redis.Redis) -> float:
    _seed(client, "bench:nsrc", NAIVE)
    last, moved = "0-0", 0
    started = time.perf_counter()
    while moved < NAIVE:
        reply = client.xread({"bench:nsrc": last}, count=1)
        entry_id, fields = reply[0][1][0]
        client.xadd("bench:ndst", fields)
        last, moved = entry_id, moved + 1
    return NAIVE / (time.perf_counter() - started)


READER = r"""
import json, sys, time, redis
reader = redis.Redis.from_url(sys.argv[1], decode_responses=True)
seen, last, deadline = {}, "0-0", time.monotonic() + float(sys.argv[3])
while time.monotonic() < deadline and len(seen) < int(sys.argv[2]):
    for _, entries in reader.xread({"bench:live.dst": last}, block=100) or []:
        now = time.perf_counter()
        for entry_id, _ in entries:
            seen[entry_id] = now
        last = entries[-1][0]
print(json.dumps(seen))
"""


def live_latency(url: str, config_path: str) -> list[float]:
    """Seconds from each source XADD to the entry being readable in the destination.

    The bridge (`qtctl run bridge`), a destination reader and the producer are three processes,
    as on the fleet; perf_counter is CLOCK_MONOTONIC, the same clock in all of them."""
    count = 15_000
    producer = redis.Redis.from_url(url, decode_responses=True)
    producer.xadd("bench:live", FIELDS)  # the route exists before the clock starts
    bridge = subprocess.Popen(
        [sys.executable, "-m", "qtctl", "--config", config_path, "run", "bridge"],
        stderr=subprocess.DEVNULL,
    )
    reader = subprocess.Popen(
        [sys.executable, "-c", READER, url, str(count + 1), "20"],
        stdout=subprocess.PIPE,
        text=True,
    )
    time.sleep(1.5)  # both connected and waiting
    sent: dict[str, float] = {}
    started = time.perf_counter()
    for i in range(count):  # 5,000 entries/s for 3 s
        target = started + i / 5000
        while time.perf_counter() < target:
            time.sleep(0.00005)
        sent[producer.xadd("bench:live", FIELDS)] = time.perf_counter()
    out, _ = reader.communicate(timeout=30)
    bridge.terminate()
    bridge.wait(timeout=10)
    seen = json.loads(out)
    missing = [i for i in sent if i not in seen]
    assert not missing, f"{len(missing)} entries never arrived"
    return sorted(seen[i] - t for i, t in sent.items())


def run(rounds: int = 3) -> list[Comparison]:
    sys.path.insert(0, ".")
    from tests.support.redis_server import start_redis

    server = start_redis()
    try:
        client = redis.Redis(port=server.port, decode_responses=True)
        _seed(client, "bench:src", BACKLOG)
        ours, ceiling = [], []
        for _ in range(max(1, rounds // 3)):  # alternating, so both see the same machine speed
            ours.append(backlog_rate(server.url, client))
            ceiling.append(benchmark_rate(server.port))
            client.delete("bench:raw")
        client.delete("bench:src")
        naive = [naive_rate(client)]
        config = server.workdir / "bridge.toml"  # removed with the server's folder
        config.write_text(
            f"[redis]\nurl = '{server.url}'\n[bridge]\nroutes = ['bench:live->bench:live.dst']\n"
            "start_id = '0'\nallow_no_readers = ['bench:live.dst']\n"
        )
        latencies = live_latency(server.url, str(config))
    finally:
        server.stop()
    per_entry = lambda rates: tuple(1000 / r for r in rates)  # noqa: E731 - s per 1000 entries
    p99 = latencies[int(len(latencies) * 0.99) - 1]
    p50 = statistics.median(latencies)
    return [
        Comparison(
            name="bridge live latency at 5,000 entries/s, source XADD to destination read",
            candidate="p99",
            baseline="p50",
            target="p99 < 5 ms",
            candidate_times=(p99,),
            baseline_times=(p50,),
        ),
        Comparison(
            name=f"bridge backlog, {BACKLOG} entries (time per 1000 entries)",
            candidate="qtctl bridge (atomic Lua batch copy)",
            baseline="redis-benchmark XADD -P 64 (Redis' write ceiling)",
            target=">= 400k entries/s, ratio <= 2.86 (>= 0.35x the ceiling)",
            candidate_times=per_entry(ours),
            baseline_times=per_entry(ceiling),
        ),
        Comparison(
            name="bridge backlog vs the fleet's naive bridge (time per 1000 entries)",
            candidate="qtctl bridge (atomic Lua batch copy)",
            baseline=f"XREAD one + XADD one per round trip ({NAIVE} entries)",
            target="ratio <= 0.02 (>= 50x faster)",
            candidate_times=per_entry(ours),
            baseline_times=per_entry(naive),
        ),
    ]


if __name__ == "__main__":
    for row in run():
        print(row.name, row.candidate_median, row.baseline_median)
