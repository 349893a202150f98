"""`qtctl fix --apply --unsafe` patches a sys.path root reached through variables, on a real
systemd: the expression that produces the wrong folder is changed (`HERE.parents[1]` ->
`parents[2]`, `".."` -> `"../.."`), or, where the variable also serves other code, the
insert's argument; the unit comes back and the patch is undone. A unit that runs fine gets
no patch (no failure, no evidence)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest

from qtctl.sandbox import Sandbox, SandboxSpec
from tests.support.fleet import PY, ROOT, SLEEPER

pytestmark = pytest.mark.sandbox
ETC = "/etc/systemd/system"
MS = f"{ROOT}/microservices"
IMPORT = "from ai_engine.risk_kernel import compute_stops  # noqa: E402\n"
BY_PARENTS = (
    "import sys\nfrom pathlib import Path\n\nHERE = Path(__file__).resolve()\n"
    "ROOT = HERE.parents[1]\nsys.path.insert(0, str(ROOT))\n\n" + IMPORT
)
BY_STRING = (
    "import os, sys\nHERE = os.path.dirname(os.path.abspath(__file__))\n"
    'BASE = os.path.normpath(os.path.join(HERE, ".."))\nsys.path.insert(0, BASE)\n' + IMPORT
)
ROOT_ALSO_FINDS_CONFIG = (
    "import sys\nfrom pathlib import Path\n\nROOT = Path(__file__).resolve().parents[1]\n"
    'CONFIG = ROOT / "risk.toml"\nsys.path.insert(0, str(ROOT))\n\n' + IMPORT
)
# sys.path right (parents[2]), one import that microservices/ai_engine would not have: runs
RUNNING = BY_PARENTS.replace("parents[1]", "parents[2]")
FILES = {
    f"{ROOT}/ai_engine/__init__.py": "",
    f"{ROOT}/ai_engine/risk_kernel.py": "def compute_stops():\n    return 1\n",
    f"{MS}/ai_engine/__init__.py": "# a stale copy without risk_kernel\n",
    f"{MS}/risk_parents/main.py": BY_PARENTS + SLEEPER,
    f"{MS}/risk_string/main.py": BY_STRING + SLEEPER,
    f"{MS}/risk_config/main.py": ROOT_ALSO_FINDS_CONFIG + SLEEPER,
    f"{MS}/risk_running/main.py": RUNNING + SLEEPER,
}
UNITS = {
    f"quantum-sp-{name}.service": f"[Unit]\nDescription=t\n[Service]\nExecStart={PY} "
    f"{MS}/risk_{name}/main.py\n[Install]\nWantedBy=multi-user.target\n"
    for name in ("parents", "string", "config", "running")
}
FAILING = ["quantum-sp-parents.service", "quantum-sp-string.service", "quantum-sp-config.service"]


@pytest.fixture(scope="module")
def box() -> Iterator[Sandbox]:
    links = {f"{ETC}/multi-user.target.wants/{n}": f"{ETC}/{n}" for n in UNITS}
    spec = SandboxSpec(units=UNITS, files=FILES, symlinks=links, wants=sorted(UNITS))
    with Sandbox(spec) as sandbox:
        for unit in FAILING:
            sandbox.wait_for(unit, ["failed"], timeout=90)
        sandbox.wait_for("quantum-sp-running.service", ["active"], timeout=90)
        time.sleep(0.5)
        sandbox.run("journalctl", "--sync")
        yield sandbox


def env(units: str) -> dict[str, str]:
    return {
        "QTCTL__FLEET__UNITS": units,
        "QTCTL__FLEET__CODE_ROOTS": ROOT,
        "QTCTL__FIX__STATE_DIR": f"/var/lib/qtctl-sp-{units.split('.')[0]}",
        "QTCTL__FIX__SETTLE_SEC": "1",
    }


def fix(box: Sandbox, units: str, *args: str) -> tuple[int, dict[str, dict]]:  # type: ignore[type-arg]
    res = box.qtctl("--format", "json", "fix", *args, env=env(units))
    assert res.returncode in (0, 1), res.stderr
    doc = json.loads(res.stdout)
    return res.returncode, {f"{r['code']} {r['subject']}": r for r in doc["repairs"]} | {"": doc}


def text(box: Sandbox, path: str) -> str:
    return box.host_path(path).read_text()


def active(box: Sandbox, unit: str) -> str:
    return box.systemctl("is-active", unit).stdout.strip()


def test_the_incident_shape_is_patched_at_its_parents_index_and_undone(box: Sandbox) -> None:
    unit, script = "quantum-sp-parents.service", f"{MS}/risk_parents/main.py"
    assert "No module named 'ai_engine.risk_kernel'" in box.journal(unit)
    code, plan = fix(box, unit, "--apply", "--unsafe")
    patch = plan[f"QT201 {unit}"]
    assert patch["result"] == "fixed", (patch["held"], patch["diff"])
    assert "-ROOT = HERE.parents[1]\n+ROOT = HERE.parents[2]\n" in patch["diff"]
    assert plan[f"QT101 {unit}"]["result"] == "fixed"
    assert code == 0 and active(box, unit) == "active"
    assert text(box, script) == BY_PARENTS.replace("parents[1]", "parents[2]") + SLEEPER

    res = box.qtctl("fix", "--undo", str(plan[""]["record"]), env=env(unit))
    assert res.returncode == 0, res.stderr + res.stdout
    assert text(box, script) == BY_PARENTS + SLEEPER


def test_a_string_of_dots_is_the_edit(box: Sandbox) -> None:
    unit = "quantum-sp-string.service"
    _, plan = fix(box, unit, "--apply", "--unsafe")
    patch = plan[f"QT201 {unit}"]
    assert patch["result"] == "fixed", (patch["held"], patch["diff"])
    assert """+BASE = os.path.normpath(os.path.join(HERE, '../..'))\n""" in patch["diff"]
    assert active(box, unit) == "active"


def test_a_root_that_other_code_reads_keeps_its_value(box: Sandbox) -> None:
    # CONFIG = ROOT / "risk.toml": changing ROOT would move the config; the insert changes
    unit, script = "quantum-sp-config.service", f"{MS}/risk_config/main.py"
    _, plan = fix(box, unit, "--apply", "--unsafe")
    patch = plan[f"QT201 {unit}"]
    assert patch["result"] == "fixed", (patch["held"], patch["diff"])
    assert "+sys.path.insert(0, str(Path(__file__).absolute().parents[2]))\n" in patch["diff"]
    assert "ROOT = Path(__file__).resolve().parents[1]\n" in text(box, script)
    assert active(box, unit) == "active"


def test_a_running_unit_gets_no_patch(box: Sandbox) -> None:
    unit = "quantum-sp-running.service"
    before = text(box, f"{MS}/risk_running/main.py")
    _, plan = fix(box, unit, "--apply", "--unsafe")
    assert not [k for k in plan if k.startswith("QT201")], plan
    assert text(box, f"{MS}/risk_running/main.py") == before
    assert active(box, unit) == "active"
