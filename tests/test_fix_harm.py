"""`qtctl fix` does no harm, on a real systemd: no source patch or drop-in for a unit that does not
fail for that reason (or whose patch would move or shadow an import of any unit running the
file), nothing changed of a protected unit, no restart a set-up step will fail again, and
"fixed" only for a unit that stays up."""

from __future__ import annotations

import json
import sys
import time
import zlib
from collections.abc import Iterator

import pytest

from qtctl.sandbox import BoxFile, Sandbox, SandboxSpec
from tests.support.fleet import PY, ROOT, SLEEPER

pytestmark = pytest.mark.sandbox
ETC = "/etc/systemd/system"
MS = f"{ROOT}/microservices"
TO_ROOT = "os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..'))"
TRADER = f"""\
import os, sys, time
sys.path.insert(0, {TO_ROOT})
from ai_engine.stops import compute
if os.environ.get("TRADER_EXTRAS"):
    from common.extras import extra
"""
# After boot the operator deploys a version whose import is no longer behind the switch and does
# not restart: the running unit still runs the old code, the file now imports common.extras for
# sure (an import behind a condition is no certain failure: it gets no repair at all).
DEPLOYED = TRADER.replace('if os.environ.get("TRADER_EXTRAS"):\n    from', "from")
RUNS = "while True:\n    time.sleep(3600)\n"
INCIDENT = """\
import os, sys, time
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from ai_engine.risk_stops import compute_stops
"""
NOTIFY = """\
import os, socket
where = os.environ["NOTIFY_SOCKET"]
socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM).sendto(
    b"READY=1", "\\0" + where[1:] if where.startswith("@") else where
)
"""
REDIS = "import redis\nredis.Redis(port=6399, socket_connect_timeout=1).ping()\nimport time\n"
FILES: dict[str, BoxFile | str] = {
    f"{ROOT}/ai_engine/__init__.py": "",
    f"{ROOT}/ai_engine/stops.py": "def compute():\n    return 1\n",
    f"{ROOT}/ai_engine/risk_stops.py": "def compute_stops():\n    return 1\n",
    f"{ROOT}/common/__init__.py": "",  # first-party `common`, without `extras`
    f"{MS}/ai_engine/__init__.py": "# stale copy\n",
    f"{MS}/ai_engine/stops.py": "def compute():\n    return 0  # stale\n",
    f"{MS}/common/__init__.py": "",
    f"{MS}/common/extras.py": "def extra():\n    return 1\n",
    f"{MS}/trader/main.py": TRADER + RUNS,
    f"{MS}/trader_raise/main.py": TRADER + 'raise RuntimeError("x")\n',
    f"{MS}/risk/main.py": INCIDENT + RUNS,
    f"{MS}/risk_shared/main.py": INCIDENT + RUNS,
    f"{MS}/sleeper/main.py": SLEEPER,
    f"{MS}/nomodule/main.py": "import quantum_nowhere_module\n" + "import time\n" + RUNS,
    f"{MS}/flaky/main.py": REDIS + NOTIFY + "time.sleep(1)\nraise SystemExit(3)\n",
    f"{MS}/steady/main.py": REDIS + RUNS,
}


def _unit(exec_start: str, extra: str = "", install: bool = True) -> str:
    tail = "[Install]\nWantedBy=multi-user.target\n" if install else ""
    return f"[Unit]\nDescription=t\n[Service]\nExecStart={exec_start}\n{extra}\n{tail}"


PYUNITS = {
    "quantum-harm-trader.service": (f"{MS}/trader/main.py", "Restart=on-failure\n"),
    "quantum-harm-extras.service": (f"{MS}/trader/main.py", "Environment=TRADER_EXTRAS=1\n"),
    "quantum-harm-raise.service": (f"{MS}/trader_raise/main.py", ""),
    "quantum-harm-risk.service": (f"{MS}/risk/main.py", ""),
    "quantum-harm-shared.service": (f"{MS}/risk_shared/main.py", ""),
    "quantum-execution-shared.service": (f"{MS}/risk_shared/main.py", ""),
    "quantum-harm-nomodule.service": (f"{MS}/nomodule/main.py", ""),
    "quantum-harm-chdir.service": (f"{MS}/sleeper/main.py", "WorkingDirectory=/opt/ghost/svc\n"),
    "quantum-harm-envfile.service": (f"{MS}/sleeper/main.py", "EnvironmentFile=/etc/q/ghost.env\n"),
    "quantum-harm-flaky.service": (f"{MS}/flaky/main.py", "Type=notify\n"),
    "quantum-harm-steady.service": (f"{MS}/steady/main.py", ""),
}
OTHER = {
    "quantum-harm-redis.service": _unit("/usr/bin/redis-server --port 6399 --save ''", "", False),
    "quantum-emergency-exit-harm.service": _unit(f"{PY} {MS}/sleeper/main.py"),
    "quantum-harm-norestart.service": _unit(f"{PY} {MS}/sleeper/main.py"),
    "quantum-harm-said-no.service": _unit(f"{PY} {MS}/sleeper/main.py", "Restart=no\n"),
}
FAILING = [u for u in PYUNITS if u not in ("quantum-harm-trader.service",)]


def spec() -> SandboxSpec:
    units = {n: _unit(f"{PY} {script}", extra) for n, (script, extra) in PYUNITS.items()}
    units |= OTHER
    enabled = [n for n in units if n != "quantum-harm-redis.service"]
    links = {f"{ETC}/multi-user.target.wants/{n}": f"{ETC}/{n}" for n in enabled}
    return SandboxSpec(units=units, files=FILES, symlinks=links, wants=sorted(enabled))


@pytest.fixture(scope="module")
def box() -> Iterator[Sandbox]:
    with Sandbox(spec()) as sandbox:
        for unit in FAILING:
            sandbox.wait_for(unit, ["failed"], timeout=90)
        sandbox.wait_for("quantum-harm-trader.service", ["active"], timeout=90)
        time.sleep(0.5)
        sandbox.run("journalctl", "--sync")
        yield sandbox


def fix(box: Sandbox, units: str, *args: str, **config: str) -> tuple[int, dict[str, dict]]:  # type: ignore[type-arg]
    """`qtctl fix` on these units only (its own journal folder), as JSON: (exit code, repairs
    by (code, subject) joined as 'CODE subject')."""
    env = {
        "QTCTL__FLEET__UNITS": units,
        "QTCTL__FIX__STATE_DIR": f"/var/lib/qtctl-{zlib.crc32(units.encode()):08x}",
        "QTCTL__REDIS__URL": "redis://127.0.0.1:6399/0",
        "QTCTL__FIX__SETTLE_SEC": "2",
        **{f"QTCTL__FIX__{k.upper()}": v for k, v in config.items()},
    }
    res = box.qtctl("--format", "json", "fix", *args, env=env)
    assert res.returncode in (0, 1), res.stderr
    doc = json.loads(res.stdout)
    return res.returncode, {f"{r['code']} {r['subject']}": r for r in doc["repairs"]} | {"": doc}


@pytest.fixture
def deployed(box: Sandbox) -> Iterator[Sandbox]:
    """The deploy without a restart, for one test; the booted version is put back after it."""
    files = {
        f"{MS}/trader/main.py": RUNS,
        f"{MS}/trader_raise/main.py": 'raise RuntimeError("x")\n',
    }
    for path, tail in files.items():
        box.write(path, DEPLOYED + tail)
    yield box
    for path, tail in files.items():
        box.write(path, TRADER + tail)


def text(box: Sandbox, path: str) -> str:
    return box.host_path(path).read_text()


def invocation(box: Sandbox, unit: str) -> str:
    return box.systemctl("show", "-P", "InvocationID", unit).stdout.strip()


def test_a_running_unit_with_an_import_finding_gets_no_patch(deployed: Sandbox) -> None:
    box = deployed
    # The unit runs; its `"../.."` root is right. A latent import (common.extras, deployed
    # without a restart) is a QT201, and the one patch that resolves it puts microservices/
    # first: the incident's shadowing. Before this rule, --unsafe applied it.
    before = text(box, f"{MS}/trader/main.py")
    _, plan = fix(box, "quantum-harm-trader.service", "--apply", "--unsafe")
    repair = plan["QT201 quantum-harm-trader.service"]
    assert (
        "+sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(os.path.abspath("
        "__file__)), '..')))\n"
    ) in repair["diff"]
    assert repair["result"] == "held" and repair["rule"] == "not-failing"
    assert repair["held"].startswith("the unit is active (running), not failing")
    assert text(box, f"{MS}/trader/main.py") == before
    assert not box.host_path(f"{ETC}/quantum-harm-trader.service.d").exists()


def test_a_failing_unit_whose_patch_moves_an_import_of_the_file_gets_none(
    deployed: Sandbox,
) -> None:
    box = deployed
    # Failing for exactly that import (its journal says so), but the patch would make
    # ai_engine come from the stale copy in microservices/: held, naming the move.
    before = text(box, f"{MS}/trader/main.py")
    units = "quantum-harm-extras.service,quantum-harm-trader.service"
    _, plan = fix(box, units, "--apply", "--unsafe")
    repair = plan["QT201 quantum-harm-extras.service"]
    assert repair["rule"] == "harm", repair
    assert repair["held"] == (
        "the patch would do harm to quantum-harm-extras.service: import ai_engine.stops would "
        f"come from {MS}/ai_engine/stops.py instead of {ROOT}/ai_engine/stops.py"
    )
    assert text(box, f"{MS}/trader/main.py") == before
    assert plan["QT101 quantum-harm-extras.service"]["result"] == "held"
    assert "No module named 'common.extras'" in box.journal("quantum-harm-extras.service")


def test_a_unit_failing_for_another_reason_gets_no_import_repair(deployed: Sandbox) -> None:
    box = deployed
    before = text(box, f"{MS}/trader_raise/main.py")
    _, plan = fix(box, "quantum-harm-raise.service", "--apply", "--unsafe")
    repair = plan["QT201 quantum-harm-raise.service"]
    assert (repair["result"], repair["rule"]) == ("held", "no-evidence")
    assert "shows no ModuleNotFoundError" in repair["held"]
    assert text(box, f"{MS}/trader_raise/main.py") == before


def test_no_patch_of_a_file_a_protected_unit_runs(box: Sandbox) -> None:
    before = text(box, f"{MS}/risk_shared/main.py")
    units = "quantum-harm-shared.service,quantum-execution-shared.service"
    _, plan = fix(box, units, "--apply", "--unsafe")
    repair = plan["QT201 quantum-harm-shared.service"]
    assert (repair["result"], repair["rule"]) == ("held", "protected")
    assert repair["held"].startswith(
        "quantum-execution-shared.service runs the same file: protected unit "
        "(quantum-execution-shared.service matches fleet.protected"
    )
    assert text(box, f"{MS}/risk_shared/main.py") == before


def test_the_incident_is_patched_restarted_and_fixed(box: Sandbox) -> None:
    code, plan = fix(box, "quantum-harm-risk.service", "--apply", "--unsafe")
    assert plan["QT201 quantum-harm-risk.service"]["result"] == "fixed"
    restart = plan["QT101 quantum-harm-risk.service"]
    assert (restart["result"], restart["settle"]) == ("fixed", "")
    assert code == 0
    assert box.systemctl("is-active", "quantum-harm-risk.service").stdout.strip() == "active"
    assert TO_ROOT in text(box, f"{MS}/risk/main.py")


def test_restarts_a_set_up_step_fails_again_are_not_attempted(box: Sandbox) -> None:
    units = "quantum-harm-chdir.service,quantum-harm-envfile.service,quantum-harm-nomodule.service"
    before = {u: invocation(box, u) for u in units.split(",")}
    _, plan = fix(box, units, "--apply", "--unsafe")
    chdir = plan["QT101 quantum-harm-chdir.service"]
    assert chdir["held"].startswith(
        "permanent cause: WorkingDirectory /opt/ghost/svc does not exist (200/CHDIR)"
    )
    assert plan["QT101 quantum-harm-envfile.service"]["held"].startswith(
        "permanent cause: EnvironmentFile /etc/q/ghost.env does not exist (Result=resources)"
    )
    nomodule = plan["QT101 quantum-harm-nomodule.service"]
    assert nomodule["result"] == "held" and "quantum_nowhere_module" in nomodule["held"]
    assert {u: invocation(box, u) for u in before} == before  # not one restart
    # the operator installs the missing module: now it resolves, and the restart is no longer
    # pointless
    box.write(f"{MS}/nomodule/quantum_nowhere_module.py", "")
    _, again = fix(box, "quantum-harm-nomodule.service", "--apply", "--unsafe")
    assert again["QT101 quantum-harm-nomodule.service"]["result"] == "fixed"


def test_fixed_only_when_the_unit_stays_up(box: Sandbox) -> None:
    # Both failed while their Redis was down (transient); it is up now. The flaky one comes up
    # (READY=1) and exits a second later: a check right after the restart saw it active. The
    # watch lasts RestartSec= + fix.settle_sec from the moment it is up.
    box.systemctl("start", "quantum-harm-redis.service", check=True)
    box.wait_for("quantum-harm-redis.service", ["active"])
    time.sleep(0.3)
    code, plan = fix(
        box,
        "quantum-harm-flaky.service,quantum-harm-steady.service",
        "--select",
        "QT101",
        "--apply",
        "--unsafe",
        settle_sec="4",
    )
    assert plan["QT101 quantum-harm-steady.service"]["result"] == "fixed"
    flaky = plan["QT101 quantum-harm-flaky.service"]
    assert flaky["result"] == "still-failing", flaky
    assert flaky["settle"].startswith("failed again: failed (failed), Result=exit-code")
    assert "status=3" in flaky["settle"]
    assert code == 1


def test_no_restart_drop_in_where_staying_down_may_be_meant(box: Sandbox) -> None:
    units = (
        "quantum-emergency-exit-harm.service,quantum-harm-norestart.service,"
        "quantum-harm-said-no.service"
    )
    _, plan = fix(box, units, "--select", "QT104", "--apply", "--unsafe")
    emergency = plan.get("QT104 quantum-emergency-exit-harm.service")
    assert emergency is None or emergency["result"] == "held"  # info, or held as protected
    said_no = plan["QT104 quantum-harm-said-no.service"]
    assert (said_no["result"], said_no["rule"]) == ("held", "deliberate")
    assert said_no["held"].startswith("Restart=no is written in its unit files")
    assert plan["QT104 quantum-harm-norestart.service"]["result"] == "fixed"  # plain: drop-in
    named = "quantum-harm-said-no.service"
    _, again = fix(box, units, "--select", "QT104", "--apply", "--only", named)
    assert again[f"QT104 {named}"]["result"] == "fixed"  # the operator asked for it
    for unit in ("quantum-emergency-exit-harm.service",):
        assert not box.host_path(f"{ETC}/{unit}.d").exists()


SETTLE_RUNNING = """\
import json, sys
from qtctl.adapters.systemd import SystemdAdapter
from qtctl.config import SystemdSettings
from qtctl.fix.settle import settle
systemd = SystemdAdapter.connect(SystemdSettings())
systemd.restart(sys.argv[1])
print(json.dumps(settle(systemd, [sys.argv[1]], 1.0)))
"""


def test_restarting_a_running_unit_is_judged_by_its_new_run(box: Sandbox) -> None:
    # Right after RestartUnit the old process is still `active` (its stop job pending): the
    # watch must start with the new invocation, or the new one reads as a crash loop.
    unit = "quantum-harm-trader.service"
    before = invocation(box, unit)
    res = box.run(sys.executable, "-c", SETTLE_RUNNING, unit)
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout) == {unit: ""}
    assert invocation(box, unit) != before
