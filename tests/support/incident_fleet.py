"""A small fleet with its own Redis for the incident chains that need one: the demo's incident
(an import error through a shadowed package that also silences a heartbeat, a CRLF script, a
dead consumer holding its group's entries), a crash-looping producer behind a stale stream, a
near-miss stream name whose readers sit idle, and (once Redis is stopped) feeds crash-looping
on the dead Redis."""

from __future__ import annotations

import sys

from qtctl.sandbox import BoxFile, SandboxSpec
from tests.support.fleet import CRLF_SCRIPT, RISK_PROPOSAL_MAIN, ROOT

PY = sys.executable  # has redis-py, like the fleet's venvs
CONFIG = "/etc/qtctl/qtctl.toml"
REDIS_UNIT = "redis-server.service"
FEEDS = tuple(f"quantum-feed-{i}.service" for i in range(3))
PRODUCER = "quantum-signal-producer.service"
P = "quantum:stream:"
CONFIG_TEXT = f"""\
[services]
heartbeats = ["quantum:heartbeat:risk-proposal=15"]

[streams]
expected = ["trade.execution.result", "ai.signal_generated"]
live = ["ai.signal_generated"]
dead_consumer_sec = 1
pending_idle_sec = 1

[streams.per_stream."ai.signal_generated"]
producer = "{PRODUCER}"
"""
FEED = """\
import time
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry
client = redis.Redis(port=6379, socket_connect_timeout=1, retry=Retry(NoBackoff(), 0))
while True:
    client.ping()
    time.sleep(0.2)
"""
PRODUCER_MAIN = 'raise ValueError("signal model file is empty")\n'
LOOP = "Restart=always\nRestartSec=300ms\n"


def _unit(exec_start: str, service: str = "", unit: str = "") -> str:
    return (
        f"[Unit]\nDescription=incident fleet\n{unit}\n[Service]\nExecStart={exec_start}\n"
        f"{service}\n[Install]\nWantedBy=multi-user.target\n"
    )


def incident_spec() -> SandboxSpec:
    """Redis as a unit, the risk-proposal import error, a looping producer, three feeds."""
    units = {
        REDIS_UNIT: _unit('/usr/bin/redis-server --port 6379 --save "" --appendonly no'),
        "quantum-risk-proposal.service": _unit(
            f"{PY} {ROOT}/microservices/risk_proposal/main.py",
            f'WorkingDirectory={ROOT}\nEnvironment="PYTHONPATH={ROOT}"\n',
        ),
        "quantum-exit-watch.service": _unit(f"{ROOT}/scripts/exit_watch.sh"),
        PRODUCER: _unit(
            f"{PY} {ROOT}/microservices/signal_producer/main.py", LOOP, "StartLimitIntervalSec=0"
        ),
    }
    for feed in FEEDS:
        units[feed] = _unit(
            f"{PY} {ROOT}/microservices/feed/main.py",
            LOOP,
            f"StartLimitIntervalSec=0\nAfter={REDIS_UNIT}",
        )
    files: dict[str, BoxFile | str] = {
        f"{ROOT}/microservices/risk_proposal/main.py": RISK_PROPOSAL_MAIN,
        f"{ROOT}/microservices/signal_producer/main.py": PRODUCER_MAIN,
        f"{ROOT}/microservices/feed/main.py": FEED,
        f"{ROOT}/ai_engine/__init__.py": "",
        f"{ROOT}/ai_engine/risk_kernel_stops.py": "def compute_stops(price):\n    return ()\n",
        # the demo's shadow: microservices/ai_engine hides the real package (QT203)
        f"{ROOT}/microservices/ai_engine/__init__.py": "",
        f"{ROOT}/scripts/exit_watch.sh": BoxFile(CRLF_SCRIPT, 0o755),
        CONFIG: CONFIG_TEXT,
    }
    return SandboxSpec(units=units, files=files, wants=sorted(units))


SEED = (
    # the producer's last signal, long ago: the stream is stale
    ("XADD", f"{P}ai.signal_generated", "1000-0", "symbol", "BTCUSDT", "signal", "LONG"),
    # the old bridge's near-miss name holds the fills; its readers' consumer sits idle
    ("XADD", f"{P}trade.execution.res", "*", "order_id", "ord-1", "status", "FILLED"),
    ("XADD", f"{P}trade.execution.res", "*", "order_id", "ord-2", "status", "FILLED"),
    ("XGROUP", "CREATE", f"{P}trade.execution.res", "exit-monitor", "$"),
    ("XGROUP", "CREATECONSUMER", f"{P}trade.execution.res", "exit-monitor", "monitor-1"),
    # the demo's dead consumer: it read two intents and died holding them
    ("XADD", f"{P}trade.intent", "*", "symbol", "BTCUSDT", "side", "LONG"),
    ("XADD", f"{P}trade.intent", "*", "symbol", "ETHUSDT", "side", "SHORT"),
    ("XGROUP", "CREATE", f"{P}trade.intent", "execution", "0"),
    (
        "XREADGROUP",
        "GROUP",
        "execution",
        "exec-0-old",
        "COUNT",
        "2",
        "STREAMS",
        f"{P}trade.intent",
        ">",
    ),
)
