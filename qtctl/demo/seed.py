"""What the incident left in Redis, planted in the demo box's Redis (run inside the box)."""

from __future__ import annotations

import contextlib
import time
from typing import Any

P = "quantum:stream:"
NEAR_MISS = f"{P}trade.execution.res"  # the old bridge's truncated destination
UNBOUNDED = f"{P}market.ticks"
GARBAGE_COUNT = 30
LEGACY_COUNT = 40
TICKS = 30_000

DEAD_CONSUMER = "exec-0-old"
# Every planted fault and the code and cause doctor must report it with (subject: code, cause).
EXPECTED = {
    "quantum-risk-proposal.service": {("QT101", "import-error"), ("QT201", "import-error")},
    "quantum-exit-watch.service": {("QT101", "bad-interpreter"), ("QT301", "crlf")},
    "quantum-legacy-bridge.service": {("QT102", "not-found")},
    "quantum-rl-feedback.service": {("QT102", "not-found")},
    f"{P}trade.execution.result": {("QT405", "near-miss")},
    UNBOUNDED: {("QT401", "unbounded")},
    f"{P}trade.intent group execution consumer {DEAD_CONSUMER}": {("QT404", "dead-consumer")},
    f"{P}trade.closed": {("QT504", "garbage-records")},
}


def plant(client: Any) -> dict[str, Any]:
    """Write the incident's leftovers; return what was planted, for the no-loss proof."""
    execution_ids = _legacy_bridge(client)
    ticks = _unbounded(client)
    garbage = _garbage(client)
    pending = _dead_consumer(client)
    return {
        "near_miss": execution_ids,
        "ticks": ticks,
        "garbage": garbage,
        "dead_pending": pending,
    }


def _legacy_bridge(client: Any) -> list[str]:
    """execution.result history, copied by the old bridge (IDs kept) into the truncated name."""
    start = int(time.time() * 1000) - 60_000 * LEGACY_COUNT
    ids = [f"{start + 60_000 * i}-0" for i in range(LEGACY_COUNT)]  # one fill a minute
    pipe = client.pipeline(transaction=False)
    for i, entry_id in enumerate(ids):
        fields = {"order_id": f"ord-{i}", "symbol": "BTCUSDT", "status": "FILLED", "qty": "0.01"}
        pipe.xadd(f"{P}execution.result", fields, id=entry_id)
        pipe.xadd(NEAR_MISS, {**fields, "bridged_by": "legacy-bridge"}, id=entry_id)
    pipe.execute()
    return ids


def _unbounded(client: Any) -> list[Any]:
    """Ticks nobody trims (the recorder keeps adding): [first id, last id, count]."""
    pipe = client.pipeline(transaction=False)
    for i in range(TICKS):
        pipe.xadd(UNBOUNDED, {"symbol": "BTCUSDT", "price": f"{60000 + i % 500}", "seeded": "1"})
    ids = [str(i) for i in pipe.execute()]
    return [ids[0], ids[-1], len(ids)]


def _garbage(client: Any) -> list[str]:
    """Winning trades the old exit monitor logged as `PnL=0.00 (-100 %)`."""
    pipe = client.pipeline(transaction=False)
    for i in range(GARBAGE_COUNT):
        record = {"symbol": "SOLUSDT", "side": "LONG", "entry_price": "142.10"}
        record |= {"exit_price": "145.80", "pnl_percent": "-100.0", "source": "exit-monitor-v1"}
        pipe.xadd(f"{P}trade.closed", {**record, "order_id": f"garbage-{i}"})
    return [str(entry_id) for entry_id in pipe.execute()]


def _dead_consumer(client: Any) -> list[str]:
    """A consumer that read five intents and died; atomic, so the live worker cannot take them."""
    stream = f"{P}trade.intent"
    with contextlib.suppress(Exception):  # BUSYGROUP: the execution worker made it already
        client.xgroup_create(stream, "execution", id="$", mkstream=True)
    pipe = client.pipeline(transaction=True)
    for i in range(5):
        pipe.xadd(stream, {"symbol": "BTCUSDT", "side": "LONG", "qty": "0.01", "n": str(i)})
    pipe.xreadgroup("execution", DEAD_CONSUMER, {stream: ">"}, count=5)
    replies = pipe.execute()
    return [str(entry_id) for entry_id, _ in replies[-1][0][1]]
