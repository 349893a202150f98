"""Incidents against the real systemd and a real Redis: every planted root is the root of
exactly one incident, with its consequences under it, and no consequence is left orphaned
(the test fleet's own roots are checked in the big box of tests/test_rollup.py)."""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from qtctl.sandbox import Sandbox, SandboxSpec
from tests.support.incident_fleet import (
    CONFIG,
    FEEDS,
    PRODUCER,
    REDIS_UNIT,
    SEED,
    incident_spec,
)

pytestmark = [pytest.mark.sandbox, pytest.mark.slow]
RP = "quantum-risk-proposal.service"
P = "quantum:stream:"
PROPOSALS = "quantum:risk:proposal:*"
MORE_FEEDS = tuple(f"quantum-feed-{i}.service" for i in range(3, 14))
# three positions open for an hour, none with a proposal: their publisher never started
OPEN_HOUR = ("side", "LONG", "entry_price", "100", "current_price", "101", "age_sec", "3600")
POSITIONS = tuple(
    ("HSET", f"quantum:state:positions:{symbol}", "symbol", symbol, *OPEN_HOUR)
    for symbol in ("BTCUSDT", "ETHUSDT", "SOLUSDT")
)
Pair = tuple[str, str]
# What a consequence with such a cause must be under (a rule covers the cause).
LINKED_CAUSES = {"import-error", "bad-interpreter", "dependency-down", "bad-user", "oom-kill"}


def doctor(box: Sandbox, *args: str) -> dict[str, Any]:
    res = box.qtctl("--format", "json", "doctor", *args, env={"QTCTL_CONFIG": CONFIG})
    assert res.returncode == 1, res.stderr[-2000:]
    return json.loads(res.stdout)  # type: ignore[no-any-return]


def chains(doc: dict[str, Any]) -> dict[Pair, set[Pair]]:
    """Root (code, subject) -> its consequences (code, subject), from the JSON's ids alone."""
    by_id = {f["id"]: (f["code"], f["subject"]) for f in doc["findings"]}
    found: dict[Pair, set[Pair]] = {}
    for incident in doc["incidents"]:
        assert incident["chain"][0] == incident["root"]
        root = by_id[incident["root"]]
        assert root not in found, f"two incidents for {root}"
        found[root] = {by_id[i] for i in incident["chain"][1:]}
    return found


def orphans(doc: dict[str, Any]) -> list[Pair]:
    """Unit failures with a cause the rules link, and the proposals and heartbeats a down
    service leaves behind, that are in no incident."""
    members = {i for incident in doc["incidents"] for i in incident["chain"]}
    return [
        (f["code"], f["subject"])
        for f in doc["findings"]
        if (
            (f["code"] in ("QT101", "QT103") and f["cause"] in LINKED_CAUSES)
            or (f["code"], f["cause"]) in (("QT501", "missing-proposal"), ("QT704", "missing"))
        )
        and f["id"] not in members
    ]


def spec() -> SandboxSpec:
    """The incident fleet with 14 Redis clients: its 3 feeds and 11 more like them (RestartSec=
    1s, so 14 crash loops on a dead Redis stay light on a 2-core machine)."""
    base = incident_spec()
    feed = base.units[FEEDS[0]].replace("RestartSec=300ms", "RestartSec=1s")
    units = {**base.units, **dict.fromkeys(MORE_FEEDS, feed)}
    return dataclasses.replace(base, units=units, wants=sorted(units))


def _seed(box: Sandbox) -> None:
    for command in (*SEED, *POSITIONS):
        box.run("redis-cli", *command, check=True)


def _wait(what: str, done: Any, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if done():
            return
        time.sleep(0.2)
    raise AssertionError(f"{what} did not happen in time")


def _restarts(box: Sandbox, unit: str) -> int:
    return int(box.systemctl("show", "-P", "NRestarts", unit).stdout.strip() or 0)


@pytest.fixture(scope="module")
def redis_box() -> Iterator[Sandbox]:
    with Sandbox(spec()).boot(timeout=60) as box:
        _wait("redis", lambda: box.run("redis-cli", "PING").stdout.strip() == "PONG")
        _seed(box)
        _wait("the producer loop", lambda: _restarts(box, PRODUCER) >= 3)
        _wait("the import failure", lambda: box.wait_for(RP, ["failed"]) == "failed")
        time.sleep(1.2)  # the idle consumer passes streams.dead_consumer_sec
        box.run("journalctl", "--sync")
        yield box


def test_the_demo_s_incident_and_the_chains_through_redis(
    redis_box: Sandbox,
) -> None:
    doc = doctor(redis_box)
    found = chains(doc)
    assert found[("QT201", RP)] == {
        ("QT101", RP),
        ("QT203", RP),  # the demo's shadowed package
        ("QT501", PROPOSALS),  # its positions get no proposal
        ("QT704", "quantum:heartbeat:risk-proposal"),
    }
    [missing] = [f for f in doc["findings"] if f["subject"] == PROPOSALS]
    assert missing["message"] == "no proposal for 3 open position(s): BTCUSDT, ETHUSDT, SOLUSDT"
    assert missing["refs"] == [{"kind": "written-by", "name": RP}]  # installed here; no kernel
    exit_watch = "quantum-exit-watch.service"
    assert found[("QT301", exit_watch)] == {("QT101", exit_watch)}
    dead = ("QT404", f"{P}trade.intent group execution consumer exec-0-old")
    assert found[dead] == {("QT403", f"{P}trade.intent group execution")}
    assert found[("QT103", PRODUCER)] == {("QT402", f"{P}ai.signal_generated")}
    [(root, readers)] = [(r, c) for r, c in found.items() if r[0] == "QT405"]
    assert root == ("QT405", f"{P}trade.execution.result")
    assert readers == {("QT404", f"{P}trade.execution.res group exit-monitor consumer monitor-1")}
    assert orphans(doc) == []


def test_the_table_shows_the_chain_under_its_one_root(redis_box: Sandbox) -> None:
    res = redis_box.qtctl("doctor", env={"QTCTL_CONFIG": CONFIG})
    assert res.returncode == 1, res.stderr[-2000:]
    blocks = [b.splitlines() for b in res.stdout.split("\nINCIDENT ")[1:]]
    [block] = [b for b in blocks if b[1].split()[1:3] == ["QT201", RP]]  # its root line
    under = [
        [line.split()[1], line.split()[2].rstrip(":")] for line in block if line.startswith("  └─ ")
    ]
    assert sorted(under) == [
        ["QT101", RP],
        ["QT203", RP],
        ["QT501", PROPOSALS],
        ["QT704", "quantum:heartbeat:risk-proposal"],
    ]
    assert res.stdout.count(f"└─ QT501 {PROPOSALS}:") == 1


def test_redis_killed_under_14_clients_roots_their_crash_loops(redis_box: Sandbox) -> None:
    clients = (*FEEDS, *MORE_FEEDS)
    before = {feed: _restarts(redis_box, feed) for feed in clients}
    redis_box.systemctl("kill", "--kill-who=main", "--signal=KILL", REDIS_UNIT, check=True)
    _wait(
        "the clients' crash loops",
        lambda: all(_restarts(redis_box, f) >= before[f] + 3 for f in clients),
        timeout=90,
    )
    redis_box.run("journalctl", "--sync")
    doc = doctor(redis_box)
    classified = {
        f["subject"]: (f["code"], f["cause"])
        for f in doc["findings"]
        if f["subject"] in clients and f["code"] in ("QT101", "QT103")
    }
    assert classified == dict.fromkeys(clients, ("QT103", "dependency-down"))
    found = chains(doc)
    assert found[("QT400", "redis")] == {("QT103", feed) for feed in clients}
    assert orphans(doc) == []
