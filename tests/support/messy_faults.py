"""The planted faults of the messy fleet, each declared as it is planted (see messy_fleet.py).

Setup-step failures, the incident, CRLF scripts, a missing `Requires=`, ghost paths, a real
secret, a protected unit; `permanent` marks the ones a restart cannot cure.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING

from qtctl.sandbox import BoxFile, Sandbox
from tests.support import messy_code as code
from tests.support.messy_code import PY3, ROOT, folder_of, unit

if TYPE_CHECKING:
    from tests.support.messy_fleet import MessyFleet

ETC = "/etc/systemd/system"
GHOST = "/opt/quantum/microservices"
MISSING_DEPENDENCY = "quantum-redis.service"
PROVIDER = "redis-server.service"
PROTECTED = "quantum-emergency-exit-worker.service"
SECRET_ENV = "/etc/quantum/exchange.env"
LOG_DIR = "/var/log/quantum/trade-journal"  # missing: 209/STDOUT
RW_DIR = "/var/lib/quantum/feature-cache"  # missing: 226/NAMESPACE
REDIS_UNIT = (
    "[Unit]\nDescription=Advanced key-value store\n\n[Service]\n"
    "ExecStart=/usr/bin/redis-server --port 6379 --bind 127.0.0.1 --save '' --appendonly no\n"
)


def start_redis(box: Sandbox) -> None:
    """Redis comes up after the feeds died: their restarts are refused (the Requires= is
    missing), so they stay down although Redis now runs, as on the real fleet."""
    box.systemctl("start", PROVIDER, check=True)


def plant_faults(fleet: MessyFleet, services: list[str], rng: random.Random) -> None:
    """Every fault but the code-tree summaries, on the shuffled services."""
    dependency_missing(fleet, services[:14])
    ghosts(fleet, services[14:17])
    faults(fleet, services, rng)


def dependency_missing(fleet: MessyFleet, services: list[str]) -> None:
    """14 Redis feeds that `Requires=quantum-redis.service`: systemd starts them at boot anyway;
    Redis is not up yet, they exit, and their restart is refused for the missing unit."""
    needs = f"Requires={MISSING_DEPENDENCY}\nAfter={MISSING_DEPENDENCY}\n"
    fleet.plant("QT102", MISSING_DEPENDENCY, "not-found")
    for name in services:
        rel = f"microservices/{folder_of(name)}/feed.py"
        fleet.code_file(rel, code.REDIS_FEED)
        unit_name = f"quantum-{name}-feed.service"
        fleet.add(
            unit_name,
            unit(f"{PY3} {ROOT}/{rel}", unit_extra=needs),
            "deploy/prod",
            "failing",
        )
        fleet.plant("QT101", unit_name, "dependency-missing", MISSING_DEPENDENCY)
        fleet.plant("QT104", unit_name, "requires-missing", MISSING_DEPENDENCY)
        fleet.repairable |= {f"{ETC}/{unit_name}", f"{ETC}/{unit_name}.d"}


def ghosts(fleet: MessyFleet, services: list[str]) -> None:
    """Gen 2: units still pointing at /opt/quantum/microservices (200/CHDIR, permanent)."""
    for name in services:
        where = f"{GHOST}/{folder_of(name)}"
        unit_name = f"quantum-{name}-v2.service"
        text = unit(f"{PY3} {where}/main.py", workdir=where, restart_sec=1)
        fleet.add(unit_name, text, "ops/old", "failing")
        real = f"{ROOT}/microservices/{folder_of(name)}"
        fleet.plant("QT101", unit_name, "start-limit-hit", where, real, permanent=True)
        fleet.plant("QT104", unit_name, "working-directory", where)


def faults(fleet: MessyFleet, services: list[str], rng: random.Random) -> None:
    """The incident, CRLF shell scripts, setup-step failures, a protected unit, a secret."""
    _incident(fleet)
    _crlf_scripts(fleet, services[17:23])
    main = f"{PY3} {ROOT}/microservices/{folder_of(services[23])}/main.py"
    _setup_steps(fleet, main)
    worker = fleet.code_file("microservices/emergency_exit/worker.py", code.SLEEP)
    fleet.add(PROTECTED, unit(f"{PY3} {worker}", restart="no"), "ops/units")
    migrate = fleet.code_file("scripts/migrate.py", code.MIGRATE)
    oneshot = unit(f"{PY3} {migrate}", restart="no", extra="Type=oneshot\nRemainAfterExit=yes\n")
    fleet.add("quantum-db-migrate.service", oneshot, "ops/units")
    _secret(fleet, main)
    for svc in rng.sample(services[:14], 3):
        limits = "MemoryMax=512M # raised for the backfill\nCPUQuota=50%\n"
        backfill = f"quantum-{svc}-backfill.service"
        fleet.add(backfill, unit(main, limits=limits), "deploy/staging")
        # systemd drops the whole value: the unit really has no memory limit (no-limits)
        fleet.plant("QT104", backfill, "inline-comment,no-limits", "MemoryMax")
    for svc in services[20:22]:
        drifted = f"quantum-{svc}.service"
        nice = fleet.units[drifted].replace("RestartSec=2\n", "RestartSec=2\nNice=5\n")
        fleet.units[drifted] = nice
        fleet.plant("QT106", drifted, "drift", "Nice=5")


def _incident(fleet: MessyFleet) -> None:
    """parents[1] puts microservices/ first; its ai_engine/ shadows the real package."""
    rel = "microservices/risk_proposal/main.py"
    incident = fleet.code_file(rel, code.INCIDENT + "\n" + code.SLEEP)
    name = "quantum-risk-proposal.service"
    fleet.add(name, unit(f"{PY3} {incident}", restart="on-abnormal"), "deploy/systemd", "failing")
    fleet.plant("QT101", name, "import-error", "ai_engine.risk_kernel")
    fleet.plant("QT201", name, "import-error", "ai_engine.risk_kernel")
    fleet.repairable |= {incident, f"{ETC}/{name}.d"}


def _setup_steps(fleet: MessyFleet, main: str) -> None:
    """209/STDOUT and 226/NAMESPACE: a folder systemd needs is missing (a restart cannot cure)."""
    for name, extra, cause, missing in (
        ("quantum-trade-journal.service", f"StandardOutput=append:{LOG_DIR}/out.log\n",
         "log-dir-missing", LOG_DIR),
        ("quantum-feature-cache.service", f"ReadWritePaths={RW_DIR}\n",
         "namespace-path-missing", RW_DIR),
    ):  # fmt: skip
        fleet.add(name, unit(main, extra=extra, restart="on-abnormal"), "systemd", "failing")
        fleet.plant("QT101", name, cause, missing, permanent=True)


def _crlf_scripts(fleet: MessyFleet, services: list[str]) -> None:
    """Shell wrappers (`bash start.sh`), the first with CRLF; exit_watch.sh run directly, CRLF."""
    for i, svc in enumerate(services):
        text = code.WRAPPER.format(script=f"microservices/{folder_of(svc)}/main.py")
        script = fleet.code_file(
            f"scripts/start_{folder_of(svc)}.sh", code.crlf(text) if i == 0 else text
        )
        name = f"quantum-{svc}-wrapped.service"
        fleet.add(
            name,
            unit(f"/bin/bash {script}", restart="on-abnormal"),
            "scripts/systemd",
            "failing" if i == 0 else "healthy",
        )
        if i == 0:
            fleet.plant("QT301", name, "crlf", script)
            fleet.plant("QT101", name, "bad-interpreter", script)
            fleet.repairable.add(script)
    watch = fleet.code_file("scripts/exit_watch.sh", code.crlf(code.EXIT_WATCH), 0o755)
    fleet.add(
        "quantum-exit-watch.service", unit(watch, restart_sec=1), "scripts/systemd", "failing"
    )
    fleet.plant("QT301", "quantum-exit-watch.service", "crlf", watch)
    fleet.plant("QT101", "quantum-exit-watch.service", "start-limit-hit", watch)
    fleet.repairable.add(watch)


def _secret(fleet: MessyFleet, main: str) -> None:
    """A real secret in a world-readable env file (a true QT703), read by a healthy unit."""
    fleet.files[SECRET_ENV] = BoxFile(
        "BINANCE_API_KEY=Zk3xP9qLm2Vt7RwB4nYc8HsJ\nBINANCE_API_SECRET=qW8eR4tY1uI6oP3aS9dF\n"
        "ORDER_STREAM_KEY=quantum:stream:trade.intent\n",
        0o644,
    )
    gateway = "quantum-exchange-gateway.service"
    fleet.add(gateway, unit(main, extra=f"EnvironmentFile={SECRET_ENV}\n"), "deploy/prod")
    fleet.plant("QT703", SECRET_ENV, "secrets-readable", "BINANCE_API_SECRET")
    fleet.repairable.add(SECRET_ENV)
