"""A messy ~150-unit fleet for the sandbox, generated from a seed, with its planted faults as data.

One repository checkout (/home/qt/quantum_trader) holds the code in three layout generations
(gen 1 `microservices/NAME/main.py`, gen 3 flat `services/NAME_service.py`, packages under
`ai_engine/` and `backend/`) and copies of the unit files in ~35 folders, some duplicated with
differing contents. Gen 2 is a ghost: units whose WorkingDirectory and script are under
/opt/quantum/microservices, which does not exist. The distribution's `redis-server.service`
exists (here a plain one that runs in the box); `quantum-redis.service`, which 14 units
`Requires=`, does not.

Every fault is declared as a `Planted(code, subject, cause)`; every other (code, subject) at
warning or error is a false finding. uv is not installed on these machines, so no unit runs
`uv run` (a faked uv would test the fake).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from qtctl.sandbox import BoxFile, Sandbox, SandboxSpec
from tests.support import messy_code as code
from tests.support.messy_code import ROOT

SEED = 22
ETC = "/etc/systemd/system"
PY3 = "/usr/bin/python3"
VENV = "/opt/quantum/venvs/ai-engine"  # a real venv of /usr/bin/python3.11
GHOST = "/opt/quantum/microservices"
MISSING_DEPENDENCY = "quantum-redis.service"
PROVIDER = "redis-server.service"
PROTECTED = "quantum-emergency-exit-worker.service"
SECRET_ENV = "/etc/quantum/exchange.env"
LOG_DIR = "/var/log/quantum/trade-journal"  # missing: 209/STDOUT
RW_DIR = "/var/lib/quantum/feature-cache"  # missing: 226/NAMESPACE
SERVICES = (
    "ai-signal", "exit-monitor", "position-monitor", "feature-publisher", "harvest",
    "policy-gate", "model-registry", "ensemble", "portfolio", "funding-watch", "liquidity",
    "regime", "volatility", "order-router", "ledger", "pnl-tracker", "heat-map", "sentiment",
    "market-data", "trade-bridge", "strategy", "rebalancer", "alerts", "metrics-export",
)  # fmt: skip
AGENTS = ("xgb", "lgbm", "nhits", "patchtst", "tft", "meta", "rl_sizer", "regime_clf", "vote")
ROLES = ("worker", "replay", "shadow", "canary")
LEGACY = ("funding", "oracle", "journal", "sweeper", "fees", "snapshots", "pairs", "audit")
REPO_FOLDERS = (
    "deploy/systemd", "deploy/prod", "deploy/staging", "deploy/hetzner", "systemd", "ops/units",
    "ops/units/legacy", "ops/old", "infra/systemd", "scripts/systemd", "ai_engine/deploy",
)  # fmt: skip
REDIS_UNIT = (
    "[Unit]\nDescription=Advanced key-value store\n\n[Service]\n"
    "ExecStart=/usr/bin/redis-server --port 6379 --bind 127.0.0.1 --save '' --appendonly no\n"
)
CONFIG = f'[fleet]\ncode_roots = ["{ROOT}"]\n'


@dataclass(frozen=True)
class Planted:
    """A fault the fleet carries on purpose: doctor must report (code, subject) with cause."""

    code: str
    subject: str
    cause: str
    evidence: tuple[str, ...] = ()  # each must appear in the finding's message or detail
    permanent: bool = False  # its cause outlives a restart: fix must never restart the unit


@dataclass
class MessyFleet:
    """The generated fleet: the box to boot and what is true about it."""

    units: dict[str, str] = field(default_factory=dict)
    files: dict[str, BoxFile | str | bytes] = field(default_factory=dict)
    links: dict[str, str] = field(default_factory=dict)
    planted: list[Planted] = field(default_factory=list)
    healthy: list[str] = field(default_factory=list)  # active after boot, and must stay so
    failing: list[str] = field(default_factory=list)  # failed after boot
    repairable: set[str] = field(default_factory=set)  # paths a repair may change
    crlf_sources: set[str] = field(default_factory=set)  # .py/.sh with CRLF (QT302 lists them)
    sys_path_files: set[str] = field(default_factory=set)  # files with sys.path hacks (QT202)
    duplicated: set[str] = field(default_factory=set)  # units with a matching and a stale copy

    def spec(self) -> SandboxSpec:
        """The sandbox: every unit enabled and pulled in; Redis's unit is there, started later."""
        units = {**self.units, PROVIDER: REDIS_UNIT}
        links = dict(self.links)
        for name in self.units:
            links[f"{ETC}/multi-user.target.wants/{name}"] = f"{ETC}/{name}"
        return SandboxSpec(units=units, files=self.files, symlinks=links, wants=sorted(self.units))

    def expected(self) -> set[tuple[str, str]]:
        """The exact (code, subject) set doctor must report at warning or error."""
        return {(p.code, p.subject) for p in self.planted}

    def planted_at(self, code_: str, subject: str) -> Planted:
        """The fault planted as (code, subject)."""
        return next(p for p in self.planted if (p.code, p.subject) == (code_, subject))

    def add(self, name: str, text: str, folder: str, state: str = "healthy") -> None:
        """Install a unit and keep its copy in the repository folder."""
        self.units[name] = text
        self.files[f"{ROOT}/{folder}/{name}"] = text
        (self.healthy if state == "healthy" else self.failing).append(name)

    def plant(
        self, code_: str, subject: str, cause: str, *evidence: str, permanent: bool = False
    ) -> None:
        """Declare a fault, with the words its finding must name."""
        self.planted.append(Planted(code_, subject, cause, evidence, permanent))

    def code_file(self, rel: str, content: str | bytes, mode: int = 0o644) -> str:
        """Place a file of the code tree; CRLF .py/.sh files are remembered for QT302."""
        path = f"{ROOT}/{rel}"
        self.files[path] = BoxFile(content, mode)
        data = content.encode() if isinstance(content, str) else content
        if b"\r\n" in data and rel.endswith((".py", ".sh")):
            self.crlf_sources.add(path)
        if b"sys.path.insert" in data:
            self.sys_path_files.add(path)
        return path


def start_redis(box: Sandbox) -> None:
    """Redis comes up after the feeds died: their restarts are refused (the Requires= is
    missing), so they stay down although Redis now runs, as on the real fleet."""
    box.systemctl("start", PROVIDER, check=True)


def unit(
    exec_start: str,
    *,
    workdir: str = ROOT,
    extra: str = "",
    unit_extra: str = "",
    restart: str = "on-failure",
    restart_sec: int = 2,
    limits: str = "MemoryMax=256M\nCPUQuota=50%\n",
) -> str:
    """A service unit as the fleet writes them: a service account, a restart policy, limits."""
    where = f"WorkingDirectory={workdir}\n" if workdir else ""
    return (
        f"[Unit]\nDescription=quantum trader service\n{unit_extra}\n[Service]\n"
        f"ExecStart={exec_start}\n{where}User=daemon\nRestart={restart}\nRestartSec={restart_sec}\n"
        f"{limits}{extra}\n[Install]\nWantedBy=multi-user.target\n"
    )


def folder_of(name: str) -> str:
    """`harvest` -> `harvest`, `policy-gate` -> `policy_gate` (Python package names)."""
    return name.replace("-", "_")


def build(seed: int = SEED) -> MessyFleet:
    """The whole fleet, the same for the same seed."""
    rng = random.Random(seed)
    fleet = MessyFleet(files={"/etc/qtctl/qtctl.toml": CONFIG})
    services = list(SERVICES)
    rng.shuffle(services)
    _code_tree(fleet)
    _gen1(fleet, services, rng)
    _agents(fleet, rng)
    _legacy(fleet)
    _dependency_missing(fleet, services[:14])
    _ghosts(fleet, services[14:17])
    _faults(fleet, services, rng)
    _duplicates(fleet, rng)
    fleet.plant("QT202", "code roots", "file-relative")  # detail: every file in sys_path_files
    fleet.plant("QT302", ROOT, "crlf-sources")  # detail: every file in crlf_sources
    return fleet


def _code_tree(fleet: MessyFleet) -> None:
    for rel, text in code.SHARED.items():
        fleet.code_file(rel, text)
    fleet.files[f"{VENV}/pyvenv.cfg"] = "home = /usr/bin\ninclude-system-site-packages = false\n"
    fleet.links[f"{VENV}/bin/python"] = "/usr/bin/python3.11"
    fleet.links[f"{VENV}/bin/python3"] = "python"


def _env_file(fleet: MessyFleet, name: str, stream: str) -> str:
    """Key-name values (`*_KEY=quantum:...`) are not secrets; the file is world-readable."""
    path = f"/etc/quantum/{name}.env"
    fleet.files[path] = BoxFile(
        f"STREAM_KEY=quantum:stream:{stream}\nHEAT_STATE_KEY=quantum:heat:{name}:state\n"
        f"CACHE_KEY=quantum:cache:{name}\nLOG_LEVEL=info\nPOLL_SEC=5\nDRY_RUN=false\n",
        0o644,
    )
    return path


def _gen1(fleet: MessyFleet, services: list[str], rng: random.Random) -> None:
    """Each service: main.py in one root-finding style, a main unit and 3 role instances."""
    crlf = set(rng.sample(services, 6))
    for i, name in enumerate(services):
        style = rng.choice(("variable", "dirname", "pythonpath"))
        text = code.gen1_main(style)
        rel = f"microservices/{folder_of(name)}/main.py"
        fleet.code_file(rel, code.crlf(text) if name in crlf else text)
        fleet.code_file(f"microservices/{folder_of(name)}/handlers.py", code.HANDLERS)
        run = f"{PY3} {ROOT}/{rel}" if rng.random() < 0.5 else f"python3 {rel}"
        env = _env_file(fleet, name, rng.choice(("trade.intent", "exit.intent", "apply.plan")))
        extra = f"EnvironmentFile={env}\n"
        if style == "pythonpath":
            extra += f"Environment=PYTHONPATH={ROOT}\n"
        if i % 3 == 0:
            extra += "StartLimitBurst=5\n"  # in [Service]: systemd still takes it
        home = f"microservices/{folder_of(name)}/systemd"
        fleet.add(f"quantum-{name}.service", unit(run, extra=extra), home)
        for role in rng.sample(ROLES, 3):
            folder = rng.choice(REPO_FOLDERS)
            fleet.add(
                f"quantum-{name}-{role}.service", unit(f"{run} --role {role}", extra=extra), folder
            )


def _agents(fleet: MessyFleet, rng: random.Random) -> None:
    """Packages started with -m, relative imports inside, half of them by a venv's python."""
    for agent in AGENTS:
        for rel, text in code.agent_files(agent).items():
            fleet.code_file(rel, text)
        python = f"{VENV}/bin/python" if rng.random() < 0.5 else PY3
        name = f"quantum-agent-{agent.replace('_', '-')}.service"
        fleet.add(name, unit(f"{python} -m ai_engine.agents.{agent}.main"), "ai_engine/deploy")


def _legacy(fleet: MessyFleet) -> None:
    """Gen 3: flat scripts whose `parents[1]` really is the root; run as `python3 services/x.py`."""
    for name in LEGACY:
        rel = f"services/{name}_service.py"
        fleet.code_file(rel, code.FLAT_SERVICE + "\n" + code.SLEEP)
        fleet.add(f"quantum-legacy-{name}.service", unit(f"python3 {rel}"), "ops/units/legacy")


def _dependency_missing(fleet: MessyFleet, services: list[str]) -> None:
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


def _ghosts(fleet: MessyFleet, services: list[str]) -> None:
    """Gen 2: units still pointing at /opt/quantum/microservices (200/CHDIR, permanent)."""
    for name in services:
        where = f"{GHOST}/{folder_of(name)}"
        unit_name = f"quantum-{name}-v2.service"
        text = unit(f"{PY3} {where}/main.py", workdir=where, restart_sec=1)
        fleet.add(unit_name, text, "ops/old", "failing")
        real = f"{ROOT}/microservices/{folder_of(name)}"
        fleet.plant("QT101", unit_name, "start-limit-hit", where, real, permanent=True)
        fleet.plant("QT104", unit_name, "working-directory", where)


def _faults(fleet: MessyFleet, services: list[str], rng: random.Random) -> None:
    """The incident, CRLF shell scripts, setup-step failures, a protected unit, a secret."""
    rel = "microservices/risk_proposal/main.py"
    incident = fleet.code_file(rel, code.INCIDENT + "\n" + code.SLEEP)
    name = "quantum-risk-proposal.service"
    fleet.add(name, unit(f"{PY3} {incident}", restart="on-abnormal"), "deploy/systemd", "failing")
    fleet.plant("QT101", name, "import-error", "ai_engine.risk_kernel")
    fleet.plant("QT201", name, "import-error", "ai_engine.risk_kernel")
    fleet.repairable |= {incident, f"{ETC}/{name}.d"}
    _crlf_scripts(fleet, services[17:23])
    main = f"{PY3} {ROOT}/microservices/{folder_of(services[23])}/main.py"
    log = f"StandardOutput=append:{LOG_DIR}/out.log\n"
    fleet.add(
        "quantum-trade-journal.service",
        unit(main, extra=log, restart="on-abnormal"),
        "systemd",
        "failing",
    )
    fleet.plant(
        "QT101", "quantum-trade-journal.service", "log-dir-missing", LOG_DIR, permanent=True
    )
    rw = f"ReadWritePaths={RW_DIR}\n"
    fleet.add(
        "quantum-feature-cache.service",
        unit(main, extra=rw, restart="on-abnormal"),
        "systemd",
        "failing",
    )
    fleet.plant(
        "QT101", "quantum-feature-cache.service", "namespace-path-missing", RW_DIR, permanent=True
    )
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
        fleet.units[drifted] = fleet.units[drifted].replace(
            "RestartSec=2\n", "RestartSec=2\nNice=5\n"
        )
        fleet.plant("QT106", drifted, "drift", "Nice=5")


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


def _duplicates(fleet: MessyFleet, rng: random.Random) -> None:
    """A second, older copy of some healthy units in another folder (QT106 info: true)."""
    drifted = {p.subject for p in fleet.planted if p.code == "QT106"}
    candidates = sorted(n for n in fleet.healthy if n not in drifted and "-agent-" not in n)
    for name in rng.sample(candidates, 12):
        stale = fleet.units[name].replace("MemoryMax=256M", "MemoryMax=128M")
        folder = rng.choice([f for f in REPO_FOLDERS if f"{ROOT}/{f}/{name}" not in fleet.files])
        fleet.files[f"{ROOT}/{folder}/{name}"] = stale
        fleet.duplicated.add(name)
