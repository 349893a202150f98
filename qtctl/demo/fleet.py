"""The demo fleet: ~70 quantum-* units that really run, laid out like the real quantum trader,
with the incident's faults planted. Services use only the stdlib (a tiny RESP client in the code
tree), so the box needs nothing but /usr/bin/python3, bash and redis-cli."""

from __future__ import annotations

from pathlib import Path

from qtctl.sandbox import BoxFile, SandboxSpec

ROOT = "/home/qt/quantum_trader"
PY = "/usr/bin/python3"
ETC = "/etc/systemd/system"
REDIS_UNIT = "redis-server.service"
CONFIG_PATH = "/etc/qtctl/qtctl.toml"
WORKERS = 34  # python services that heartbeat
SCRIPTS = 20  # shell services that heartbeat
HTTP_APIS = 6  # python services with a /health endpoint on 127.0.0.1:8001..
DELETED = ("quantum-legacy-bridge.service", "quantum-rl-feedback.service")

REDIS_LITE = r'''
"""A tiny Redis client (RESP over a socket): the fleet's services need nothing installed."""
import socket
import time


class Redis:
    def __init__(self, host="127.0.0.1", port=6379, wait=60.0):
        deadline = time.monotonic() + wait
        while True:  # Redis may still be starting: a real service waits for it
            try:
                self.sock = socket.create_connection((host, port), timeout=30)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        self.buf = self.sock.makefile("rb")

    def call(self, *args):
        parts = [b"*%d\r\n" % len(args)]
        for arg in args:
            data = arg if isinstance(arg, bytes) else str(arg).encode()
            parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
        self.sock.sendall(b"".join(parts))
        return self._reply()

    def _reply(self):
        line = self.buf.readline()
        kind, rest = line[:1], line[1:-2]
        if kind in (b"+", b":"):
            return int(rest) if kind == b":" else rest.decode()
        if kind == b"-":
            raise RuntimeError(rest.decode())
        if kind == b"$":
            size = int(rest)
            return None if size < 0 else self.buf.read(size + 2)[:-2].decode()
        size = int(rest)
        return None if size < 0 else [self._reply() for _ in range(size)]
'''
SERVICE_LIB = r'''
"""What every fleet service shares: a Redis connection and its heartbeat."""
import time

from ai_engine.common.redis_lite import Redis


def beat(client, name):
    client.call("SET", f"quantum:heartbeat:{name}", f"{time.time():.3f}", "EX", 15)


def run(name, step=None, every=2.0):
    client = None
    while True:
        try:  # a slow or restarted Redis is waited out, as a real service would
            client = client or Redis()
            beat(client, name)
            if step:
                step(client)
        except (OSError, RuntimeError) as exc:
            print(f"redis: {exc}; reconnecting", flush=True)
            client = None
        time.sleep(every)
'''
RISK_KERNEL_STOPS = '''
"""The stop/target maths the risk-proposal service publishes."""


def compute_stops(price, side):
    return (price * 0.98, price * 1.03) if side == "LONG" else (price * 1.02, price * 0.97)
'''
RISK_PROPOSAL = """import os, sys
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from ai_engine.risk_kernel_stops import compute_stops
from ai_engine.common.service import run

run("risk-proposal")
"""
WORKER = """import sys
from ai_engine.common.service import run

run(sys.argv[1])
"""
HTTP_API = """import json, sys, threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from ai_engine.common.service import run


class Health(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):
        body = json.dumps({"status": "ok", "service": sys.argv[1]}).encode()
        self.send_response(200 if self.path == "/health" else 404)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


server = ThreadingHTTPServer(("127.0.0.1", int(sys.argv[2])), Health)
threading.Thread(target=server.serve_forever, daemon=True).start()
run(sys.argv[1])
"""
SIGNALS = """import json, random, time
from ai_engine.common.service import run

SYMBOLS = ["BTCUSDT", "ETHUSDT", "SOLUSDT", "XRPUSDT"]


def step(client):
    symbol = random.choice(SYMBOLS)
    side = random.choice(["LONG", "SHORT"])
    client.call("XADD", "quantum:stream:ai.signal_generated", "MAXLEN", "~", 10000, "*",
                "symbol", symbol, "side", side, "confidence", f"{random.random():.3f}")
    client.call("XADD", "quantum:stream:trade.intent", "MAXLEN", "~", 10000, "*",
                "symbol", symbol, "side", side, "qty", "0.01", "source", "signal-router")


run("signal-router", step, every=0.5)
"""
EXECUTION_WORKER = """from ai_engine.common.service import run

STREAM, GROUP, NAME = "quantum:stream:trade.intent", "execution", "exec-1"


def step(client):
    try:
        client.call("XGROUP", "CREATE", STREAM, GROUP, "$", "MKSTREAM")
    except RuntimeError:
        pass  # BUSYGROUP: it exists
    for start in ("0", ">"):  # entries handed to us first, then new ones
        reply = client.call("XREADGROUP", "GROUP", GROUP, NAME, "COUNT", 100, "BLOCK", 1000,
                            "STREAMS", STREAM, start)
        for _, entries in reply or []:
            if entries:  # deleted entries come back without fields: acknowledged as well
                client.call("XACK", STREAM, GROUP, *[entry[0] for entry in entries])


run("execution-worker", step, every=0.0)
"""
READER = """from ai_engine.common.service import run

STREAM, GROUP = "quantum:stream:trade.execution.result", "dashboard"


def step(client):
    try:
        client.call("XGROUP", "CREATE", STREAM, GROUP, "0", "MKSTREAM")
    except RuntimeError:
        pass
    reply = client.call("XREADGROUP", "GROUP", GROUP, "dash-1", "COUNT", 100, "BLOCK", 1000,
                        "STREAMS", STREAM, ">")
    for _, entries in reply or []:
        if entries:
            client.call("XACK", STREAM, GROUP, *[entry[0] for entry in entries])


run("execution-dashboard", step, every=0.0)
"""
EXIT_MONITOR = """import random
from ai_engine.common.service import run


def step(client):
    entry = random.uniform(90, 110)
    exit_price = entry * random.uniform(0.98, 1.03)
    pnl = (exit_price - entry) / entry * 100
    client.call("XADD", "quantum:stream:trade.closed", "MAXLEN", "~", 50000, "*",
                "symbol", "ETHUSDT", "side", "LONG", "entry_price", f"{entry:.4f}",
                "exit_price", f"{exit_price:.4f}", "pnl_percent", f"{pnl:.6f}",
                "source", "exit-monitor", "order_id", f"x{random.getrandbits(48)}")


run("exit-monitor", step, every=1.0)
"""
REWARDS = """import json, random
from ai_engine.common.service import run


def step(client):
    client.call("XADD", "quantum:stream:rl_rewards", "MAXLEN", "~", 10000, "*",
                "symbol", "ETHUSDT", "reward", f"{random.uniform(-0.05, 0.05):.6f}",
                "action", "1.0", "state", json.dumps({"regime": "trend"}),
                "source", "reward-publisher")


run("reward-publisher", step, every=1.0)
"""
TICKS = """import random
from ai_engine.common.service import run


def step(client):  # no MAXLEN: the stream grows without bound
    client.call("XADD", "quantum:stream:market.ticks", "*", "symbol", "BTCUSDT",
                "price", f"{random.uniform(60000, 61000):.2f}")


run("tick-recorder", step, every=1.0)
"""
SHELL_SERVICE = """#!/bin/bash
# {name}: keeps its heartbeat fresh
while true; do
    redis-cli -p 6379 SET quantum:heartbeat:{name} "$(date +%s)" EX 15 > /dev/null
    sleep 3
done
"""
EXIT_WATCH = SHELL_SERVICE.format(name="exit-watch").replace("\n", "\r\n")
CONFIG = f"""\
[redis]
url = "redis://127.0.0.1:6379/0"

[fleet]
code_roots = ["{ROOT}"]

[streams]
live = ["trade.intent", "ai.signal_generated"]
length_warn = 20000
retention_maxlen = 10000
dead_consumer_sec = 8
pending_idle_sec = 8

[streams.per_stream."trade.intent"]
groups = ["execution"]

[services]
heartbeats = ["quantum:heartbeat:*=15", "quantum:heartbeat:risk-proposal=15",
              "quantum:heartbeat:exit-watch=15"]
heartbeat_ttl_keys = ["quantum:heartbeat:*"]

[bridge]
block_ms = 200
# the old bridge's truncated name still exists until it is migrated: we know, start anyway
allow_near_miss = ["trade.execution.result"]

[rl]
stats_every_sec = 1
checkpoint_every_sec = 1
block_ms = 200

[fix]
state_dir = "/var/lib/qtctl"
# the demo's services fail, if at all, in their first second (an exec or an import), and the
# demo runs doctor again after the repairs: 2 s past RestartSec= is enough here (default 5)
settle_sec = 2
"""


def _unit(description: str, exec_start: str, user: str = "qt", extra: str = "") -> str:
    return (
        f"[Unit]\nDescription={description}\nAfter={REDIS_UNIT}\nWants={REDIS_UNIT}\n\n"
        f"[Service]\nExecStart={exec_start}\nUser={user}\nWorkingDirectory={ROOT}\n"
        f'Environment="PYTHONPATH={ROOT}"\nRestart=on-abnormal\nMemoryMax=128M\n'
        f"CPUQuota=25%\n{extra}\n[Install]\nWantedBy=multi-user.target\n"
    )


def units() -> dict[str, str]:
    """Every fleet unit, healthy ones and the planted faults, plus the box's Redis."""
    found = {
        REDIS_UNIT: "[Service]\nExecStart=/usr/bin/redis-server --port 6379 --bind 127.0.0.1 "
        "--save '' --appendonly no\n",
    }
    for i in range(WORKERS):
        name = f"quantum-{_worker_name(i)}.service"
        found[name] = _unit(name, f"{PY} {ROOT}/microservices/worker/main.py {_worker_name(i)}")
    for i in range(SCRIPTS):
        found[f"quantum-{_script_name(i)}.service"] = _unit(
            "shell service", f"/bin/bash {ROOT}/scripts/{_script_name(i)}.sh"
        )
    for i in range(HTTP_APIS):
        found[f"quantum-api-{i}.service"] = _unit(
            "HTTP API", f"{PY} {ROOT}/microservices/http_api/main.py api-{i} {8001 + i}"
        )
    programs = {
        "signal-router": "signals",
        "execution-worker": "execution_worker",
        "execution-dashboard": "execution_reader",
        "exit-monitor": "exit_monitor",
        "tick-recorder": "ticks",
        "risk-proposal": "risk_proposal",
    }
    for name, folder in programs.items():
        found[f"quantum-{name}.service"] = _unit(
            name, f"{PY} {ROOT}/microservices/{folder}/main.py"
        )
    found["quantum-exit-watch.service"] = _unit("exit watch", f"{ROOT}/scripts/exit_watch.sh")
    return found


def _worker_name(i: int) -> str:
    kinds = ("feature", "model", "ensemble", "regime", "sentiment", "portfolio", "metrics")
    return f"{kinds[i % len(kinds)]}-{i:02d}"


def _script_name(i: int) -> str:
    return f"ops-{('logship', 'backup', 'sync', 'watch')[i % 4]}-{i:02d}"


def config(rl_agent: bool = True) -> str:
    """The demo's qtctl.toml. Without the RL agent (no torch) nothing creates the stream it
    reads, so the fleet's stream contract leaves rl_rewards out instead of reporting it missing."""
    if rl_agent:
        return CONFIG
    from qtctl.config import StreamSettings

    kept = ", ".join(f'"{s}"' for s in StreamSettings.expected if s != "rl_rewards")
    return CONFIG.replace("[streams]\n", f"[streams]\nexpected = [{kept}]\n", 1)


def files(rl_agent: bool = True) -> dict[str, BoxFile | str | bytes]:
    """The code tree, the qtctl config, and the user the services run as."""
    tree: dict[str, BoxFile | str | bytes] = {
        f"{ROOT}/ai_engine/__init__.py": "",
        f"{ROOT}/ai_engine/risk_kernel_stops.py": RISK_KERNEL_STOPS,
        f"{ROOT}/ai_engine/common/__init__.py": "",
        f"{ROOT}/ai_engine/common/redis_lite.py": REDIS_LITE,
        f"{ROOT}/ai_engine/common/service.py": SERVICE_LIB,
        # a stale copy of the package inside microservices/: the incident's shadow
        f"{ROOT}/microservices/ai_engine/__init__.py": "",
        f"{ROOT}/microservices/ai_engine/legacy_features.py": "FEATURES = []\n",
        f"{ROOT}/microservices/risk_proposal/main.py": RISK_PROPOSAL,
        f"{ROOT}/microservices/worker/main.py": WORKER,
        f"{ROOT}/microservices/http_api/main.py": HTTP_API,
        f"{ROOT}/microservices/signals/main.py": SIGNALS,
        f"{ROOT}/microservices/execution_worker/main.py": EXECUTION_WORKER,
        f"{ROOT}/microservices/execution_reader/main.py": READER,
        f"{ROOT}/microservices/exit_monitor/main.py": EXIT_MONITOR,
        f"{ROOT}/microservices/ticks/main.py": TICKS,
        f"{ROOT}/microservices/rewards/main.py": REWARDS,
        f"{ROOT}/scripts/exit_watch.sh": BoxFile(EXIT_WATCH, 0o755),
        f"{ROOT}/docs/streams.md": "Executions: quantum:stream:trade.execution.result\n",
        CONFIG_PATH: config(rl_agent),
        "/etc/passwd": _with_line(
            "/etc/passwd", "qt:x:1500:1500:quantum trader:/home/qt:/usr/sbin/nologin"
        ),
        "/etc/group": _with_line("/etc/group", "qt:x:1500:"),
    }
    for i in range(SCRIPTS):
        name = _script_name(i)
        tree[f"{ROOT}/scripts/{name}.sh"] = BoxFile(SHELL_SERVICE.format(name=name), 0o755)
    return tree


def _with_line(path: str, line: str) -> str:
    text = Path(path).read_text()
    return text if f"\n{line.split(':')[0]}:" in f"\n{text}" else text.rstrip("\n") + f"\n{line}\n"


def symlinks(names: list[str]) -> dict[str, str]:
    """Enablement links of every unit, and two left behind by units that were deleted."""
    links = {f"{ETC}/multi-user.target.wants/{n}": f"{ETC}/{n}" for n in names}
    links.update({f"{ETC}/multi-user.target.wants/{n}": f"{ETC}/{n}" for n in DELETED})
    return links


def demo_spec(rl_agent: bool = True) -> SandboxSpec:
    """The box: Redis and the whole fleet started at boot."""
    fleet = units()
    names = [n for n in fleet if n != REDIS_UNIT]
    tree = files(rl_agent)
    tree.update({f"{ROOT}/deploy/systemd/{n}": fleet[n] for n in names})  # the repo's copies
    return SandboxSpec(
        units=fleet, files=tree, symlinks=symlinks(names), wants=[REDIS_UNIT, *names]
    )
