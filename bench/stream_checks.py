"""Stream checks (QT401-QT407) over 1,000 streams with groups, against the naive per-stream
loop an operator would script: `redis-cli XLEN`, `XINFO STREAM` and `XINFO GROUPS` per stream."""

from __future__ import annotations

import subprocess
import sys

import redis

from bench.harness import Comparison, interleave
from qtctl.config import load_config
from qtctl.doctor import run_doctor

STREAMS = 1000
GROUP = "quantum:group:bench"


def seed(client: redis.Redis) -> list[str]:
    """1,000 streams of 50 entries, every other one with a lagging consumer group whose
    consumer holds 10 pending entries."""
    names = [f"quantum:stream:bench.{i:04d}" for i in range(STREAMS)]
    pipe = client.pipeline(transaction=False)
    for i, name in enumerate(names):
        for j in range(50):
            pipe.xadd(name, {"j": j})
        if i % 2:
            pipe.xgroup_create(name, GROUP, id="0")
            pipe.xreadgroup(GROUP, "worker-1", {name: ">"}, count=10)
    pipe.execute()
    return names


def run(rounds: int = 5) -> list[Comparison]:
    """Median of both over the same seeded redis-server (started and killed here)."""
    sys.path.insert(0, ".")
    from tests.support.redis_server import start_redis

    server = start_redis()
    try:
        names = seed(redis.Redis(port=server.port))
        config = load_config(
            None,
            env={
                "QTCTL__REDIS__URL": server.url,
                "QTCTL__DOCTOR__SELECT": "QT401,QT402,QT403,QT404,QT405,QT407",
            },
        )

        def ours() -> None:
            run_doctor(config)

        def naive() -> None:
            for i, name in enumerate(names):
                for command in (
                    ["XLEN", name],
                    ["XINFO", "STREAM", name],
                    ["XINFO", "GROUPS", name],
                ):
                    subprocess.run(
                        ["redis-cli", "-p", str(server.port), *command],
                        stdout=subprocess.DEVNULL,
                        check=True,
                    )
                if i % 2:
                    subprocess.run(
                        ["redis-cli", "-p", str(server.port), "XINFO", "CONSUMERS", name, GROUP],
                        stdout=subprocess.DEVNULL,
                        check=True,
                    )

        cand, base = interleave(ours, naive, max(2, rounds // 3), warmup=1)
    finally:
        server.stop()
    return [
        Comparison(
            name=f"stream checks, {STREAMS} streams, {STREAMS // 2} groups",
            candidate="qtctl QT401-QT407 (SCAN + 2 pipelines)",
            baseline="redis-cli XLEN + XINFO STREAM + XINFO GROUPS (+ XINFO CONSUMERS) per stream",
            target="<= 500 ms and >= 20x faster",
            candidate_times=cand,
            baseline_times=base,
        )
    ]
