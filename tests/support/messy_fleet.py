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

from qtctl.sandbox import BoxFile, SandboxSpec
from tests.support import messy_code as code
from tests.support.messy_code import PY3, ROOT, folder_of, unit
from tests.support.messy_faults import ETC, PROVIDER, REDIS_UNIT, plant_faults

SEED = 22
VENV = "/opt/quantum/venvs/ai-engine"  # a real venv of /usr/bin/python3.11
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
    plant_faults(fleet, services, rng)
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


def _duplicates(fleet: MessyFleet, rng: random.Random) -> None:
    """A second, older copy of some healthy units in another folder (QT106 info: true)."""
    drifted = {p.subject for p in fleet.planted if p.code == "QT106"}
    candidates = sorted(n for n in fleet.healthy if n not in drifted and "-agent-" not in n)
    for name in rng.sample(candidates, 12):
        stale = fleet.units[name].replace("MemoryMax=256M", "MemoryMax=128M")
        folder = rng.choice([f for f in REPO_FOLDERS if f"{ROOT}/{f}/{name}" not in fleet.files])
        fleet.files[f"{ROOT}/{folder}/{name}"] = stale
        fleet.duplicated.add(name)
