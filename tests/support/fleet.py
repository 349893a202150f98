"""A realistic broken fleet of ~70 quantum-* units for the systemd sandbox.

Laid out like the real one: code under /home/qt/quantum_trader (ai_engine/, microservices/,
scripts/), services started by a venv python. Planted faults, each with a known cause.
"""

from __future__ import annotations

import sys

from qtctl.sandbox import BoxFile, SandboxSpec

ROOT = "/home/qt/quantum_trader"
PY = sys.executable  # the test venv's python: it has redis-py, like the fleet's venvs
HEALTHY_COUNT = 60
LEGACY = "quantum-legacy-bridge.service"
DISABLED = "quantum-feature-cache.service"  # failed, and not enabled: fix must not start it

CLEAN = "User=daemon\nRestart=on-failure\nMemoryMax=256M\nCPUQuota=50%\n"
# Unit-file mistakes of the real fleet, in units that still start (QT104 only).
LINT_DEMO = """\
[Unit]
Description=quantum unit-file mistakes
After=redis.service redis-server.service

[Service]
ExecStart=/usr/bin/python3 /home/qt/quantum_trader/microservices/sleeper/main.py
User=daemon
Restart=on-failure
CPUQuota=50%
StartLimitIntervalSec=0
MemoryLimit=1G
MemoryMax=16G # raised for the backfill
Environment="PYTHONPATH=/home/qt/quantum_trader:/opt/quantum/missing-lib"
"""
NO_RESTART = """\
[Unit]
Description=quantum service without restart policy

[Service]
ExecStart=/usr/bin/python3 /home/qt/quantum_trader/microservices/sleeper/main.py
User=daemon
MemoryMax=256M
CPUQuota=50%
"""
BROKEN_DROP_IN = "Restart=always\n"  # no [Service] header: systemd ignores every line
SLEEPER = "import time\nwhile True:\n    time.sleep(3600)\n"
RISK_PROPOSAL_MAIN = """\
import os, sys
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from ai_engine.risk_kernel_stops import compute_stops
"""
REDIS_CONSUMER = """\
import time
import redis
client = redis.Redis(host="127.0.0.1", port=6399, socket_connect_timeout=1)
client.ping()
while True:
    time.sleep(3600)
"""
EXCEPTION_MAIN = """\
def load(path):
    return {}["model_path"]

load("/models/x.pth")
"""
CRLF_SCRIPT = "#!/bin/bash\r\necho watching exits\r\nsleep 3600\r\n"
NOISY = """\
import sys
junk = bytes(range(256))
for i in range(20000):
    sys.stdout.buffer.write(b"tick %d " % i + junk[i % 200:i % 200 + 40] + b"\\n")
sys.stdout.flush()
raise ValueError("feature vector has NaN")
"""
MEMORY_HOG = "x = bytearray(200 * 1024 * 1024)\nimport time\ntime.sleep(3600)\n"


def _service(exec_start: str, extra: str = "", unit_extra: str = "") -> str:
    return (
        f"[Unit]\nDescription=quantum test service\n{unit_extra}\n"
        f"[Service]\nExecStart={exec_start}\n{extra}\n"
        "[Install]\nWantedBy=multi-user.target\n"
    )


def healthy_units() -> dict[str, str]:
    """Sixty services that start and keep running."""
    units = {}
    for i in range(HEALTHY_COUNT):
        name = f"quantum-svc-{i:02d}.service"
        units[name] = _service(f"/usr/bin/python3 {ROOT}/microservices/sleeper/main.py", CLEAN)
    units["quantum-main-ai@ensemble.service"] = _service(
        f"/usr/bin/python3 {ROOT}/microservices/sleeper/main.py", CLEAN
    )
    return units


def broken_units() -> dict[str, str]:
    """One unit per failure class, named after the real incident where there was one."""
    return {
        "quantum-risk-proposal.service": _service(
            f"{PY} {ROOT}/microservices/risk_proposal/main.py", f"WorkingDirectory={ROOT}\n"
        ),
        "quantum-exit-watch.service": _service(f"{ROOT}/scripts/exit_watch.sh"),
        "quantum-feature-publisher.service": _service("/opt/quantum/bin/feature-publisher"),
        "quantum-memory-hog.service": _service(
            f"{PY} {ROOT}/microservices/memory_hog/main.py", "MemoryMax=32M\nMemorySwapMax=0\n"
        ),
        "quantum-strategy-loop.service": _service(
            f"{PY} {ROOT}/microservices/model_loader/main.py",
            "Restart=always\nRestartSec=300ms\n",
            "StartLimitIntervalSec=0",
        ),
        "quantum-signal-loop.service": _service(
            f"{PY} {ROOT}/microservices/model_loader/main.py",
            # In [Service], systemd ignores it: the unit hits the default start limit.
            "Restart=always\nRestartSec=100ms\nStartLimitIntervalSec=0\n",
        ),
        "quantum-bad-user.service": _service(
            f"{PY} {ROOT}/microservices/sleeper/main.py", "User=quantumsvc\n"
        ),
        "quantum-stream-consumer.service": _service(
            f"{PY} {ROOT}/microservices/stream_consumer/main.py"
        ),
        "quantum-model-loader.service": _service(f"{PY} {ROOT}/microservices/model_loader/main.py"),
        "quantum-execution.service": _service(f"{PY} {ROOT}/microservices/stream_consumer/main.py"),
        DISABLED: _service(f"{PY} {ROOT}/microservices/stream_consumer/main.py"),
        "quantum-noisy.service": _service(f"{PY} {ROOT}/microservices/noisy/main.py"),
        "quantum-worker@btc\\x2dusdt.service": _service("/opt/quantum/bin/worker-missing"),
        "quantum-position-monitor.service": _service(
            f"{PY} {ROOT}/microservices/sleeper/main.py",
            "",
            "Requires=quantum-redis.service\nAfter=quantum-redis.service",
        ),
    }


def files() -> dict[str, BoxFile | str]:
    """The code tree the units run."""
    return {
        f"{ROOT}/microservices/sleeper/main.py": SLEEPER,
        f"{ROOT}/microservices/risk_proposal/main.py": RISK_PROPOSAL_MAIN,
        f"{ROOT}/microservices/stream_consumer/main.py": REDIS_CONSUMER,
        f"{ROOT}/microservices/model_loader/main.py": EXCEPTION_MAIN,
        f"{ROOT}/microservices/memory_hog/main.py": MEMORY_HOG,
        f"{ROOT}/microservices/noisy/main.py": NOISY,
        f"{ROOT}/ai_engine/__init__.py": "",
        f"{ROOT}/scripts/exit_watch.sh": BoxFile(CRLF_SCRIPT, 0o755),
    }


def fleet_spec() -> SandboxSpec:
    """~70 units: 61 healthy, the broken ones, and two deleted-but-referenced units."""
    units = {**healthy_units(), **broken_units()}
    etc = "/etc/systemd/system"
    links = {
        # deleted, but its enablement link is still there
        f"{etc}/multi-user.target.wants/{LEGACY}": f"{etc}/{LEGACY}",
        # masked on purpose: starting it could double-trade
        f"{etc}/quantum-apply-layer.service": "/dev/null",
    }
    for name in units:
        if name != DISABLED:  # enabled, as on the real fleet
            links[f"{etc}/multi-user.target.wants/{name}"] = f"{etc}/{name}"
    units["quantum-lint-demo.service"] = LINT_DEMO
    units["quantum-no-restart.service"] = NO_RESTART
    unit_files = {
        **files(),
        **code_root_copies(units),
        f"{etc}/quantum-no-restart.service.d/override.conf": BROKEN_DROP_IN,
        f"{etc}/quantum-no-restart.service.d/notes.txt": "old override\n",
    }
    return SandboxSpec(units=units, files=unit_files, symlinks=links, wants=sorted(units))


def code_root_copies(units: dict[str, str]) -> dict[str, str]:
    """Unit files kept in the code tree: one copy matches, two others drifted (QT106)."""
    repo = f"{ROOT}/deploy/systemd"
    return {
        f"{repo}/quantum-svc-00.service": units["quantum-svc-00.service"],
        f"{repo}/quantum-lint-demo.service": LINT_DEMO.replace(" # raised for the backfill", ""),
        f"{ROOT}/ops/old/quantum-lint-demo.service": LINT_DEMO.replace("User=daemon\n", ""),
        f"{ROOT}/.venv/lib/quantum-svc-01.service": "inside a virtualenv: never read\n",
    }


EXPECTED_CAUSES = {
    "quantum-risk-proposal.service": ("QT101", "import-error"),
    "quantum-exit-watch.service": ("QT101", "bad-interpreter"),
    "quantum-feature-publisher.service": ("QT101", "exec-not-found"),
    "quantum-memory-hog.service": ("QT101", "oom-kill"),
    "quantum-strategy-loop.service": ("QT103", "python-exception"),
    "quantum-signal-loop.service": ("QT101", "start-limit-hit"),
    "quantum-bad-user.service": ("QT101", "bad-user"),
    "quantum-stream-consumer.service": ("QT101", "redis-unreachable"),
    "quantum-model-loader.service": ("QT101", "python-exception"),
    "quantum-execution.service": ("QT101", "redis-unreachable"),
    DISABLED: ("QT101", "redis-unreachable"),
    "quantum-noisy.service": ("QT101", "python-exception"),
    "quantum-worker@btc\\x2dusdt.service": ("QT101", "exec-not-found"),
    "quantum-legacy-bridge.service": ("QT102", "not-found"),
    "quantum-redis.service": ("QT102", "not-found"),
}
