"""QT201 on relative imports, judged as Python judges them: against the importing module's
package (the dotted name it was started or imported as), on a real systemd where the units
really run or really fail."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from qtctl.sandbox import Sandbox, SandboxSpec

pytestmark = pytest.mark.sandbox
ROOT = "/home/qt/quantum_trader"
ETC = "/etc/systemd/system"
LOOP = "import time\nwhile True:\n    time.sleep(3600)\n"
TRADER = "from .config import LIMIT\nfrom ..models import Order\nfrom . import helpers\n"
FILES = {
    f"{ROOT}/__init__.py": "",  # a repo root that is a package too: the messy fleet's own
    f"{ROOT}/microservices/__init__.py": "",
    f"{ROOT}/microservices/models.py": "Order = dict\n",
    f"{ROOT}/microservices/trader/__init__.py": "",
    f"{ROOT}/microservices/trader/config.py": "LIMIT = 3\nif __name__ == '__main__':\n"
    "    import plotting_only_when_run_by_hand\n",  # never runs: imported, not __main__
    f"{ROOT}/bin/guarded.py": f"if __name__ == '__main__':\n    import not_installed_here\n{LOOP}",
    f"{ROOT}/microservices/trader/helpers.py": "from .config import LIMIT\n",
    f"{ROOT}/microservices/trader/main.py": f"{TRADER}{LOOP}",
    f"{ROOT}/microservices/exporter/__init__.py": "from .config import PORT\n",
    f"{ROOT}/microservices/exporter/config.py": "PORT = 9100\n",
    f"{ROOT}/microservices/exporter/__main__.py": f"from . import config\n{LOOP}",
    f"{ROOT}/microservices/feed/__init__.py": "",
    f"{ROOT}/microservices/feed/engine.py": "from .store import save\nfrom ..models import Order\n",
    f"{ROOT}/microservices/feed/store.py": "def save():\n    pass\n",
    f"{ROOT}/bin/start_feed.py": f"from microservices.feed.engine import save\n{LOOP}",
    f"{ROOT}/nsapp/sub/main.py": f"from .util import f\nfrom .. import sub\n{LOOP}",  # namespaces
    f"{ROOT}/nsapp/sub/util.py": "def f():\n    pass\n",
    f"{ROOT}/toplevel/__init__.py": "",
    f"{ROOT}/toplevel/main.py": f"from ..elsewhere import x\n{LOOP}",
}
HEALTHY = {
    "quantum-trader.service": "/usr/bin/python3 -m microservices.trader.main",
    "quantum-exporter.service": "/usr/bin/python3 -m microservices.exporter",
    "quantum-feed.service": f"/usr/bin/python3 {ROOT}/bin/start_feed.py\n"
    f"Environment=PYTHONPATH={ROOT}",
    "quantum-ns.service": "/usr/bin/python3 -m nsapp.sub.main",
    "quantum-trader-env.service": "/usr/bin/env python3 -m microservices.trader.main",
}
BROKEN = {  # unit -> the ImportError Python raises
    "quantum-trader-script.service": (
        f"/usr/bin/python3 {ROOT}/microservices/trader/main.py",
        "attempted relative import with no known parent package",
    ),
    "quantum-trader-env-script.service": (
        f"/usr/bin/env python3 {ROOT}/microservices/trader/main.py",
        "attempted relative import with no known parent package",
    ),
    "quantum-guarded.service": (
        f"/usr/bin/python3 {ROOT}/bin/guarded.py",
        "",  # ModuleNotFoundError: the script runs as __main__, so its guarded import runs
    ),
    "quantum-toplevel.service": (
        "/usr/bin/python3 -m toplevel.main",
        "attempted relative import beyond top-level package",
    ),
}


GHOST = "/opt/quantum/microservices/trader"  # a copy of the layout that exists nowhere


def spec() -> SandboxSpec:
    commands = {**HEALTHY, **{n: cmd for n, (cmd, _) in BROKEN.items()}}
    units = {
        n: f"[Service]\nExecStart={cmd}\nWorkingDirectory={ROOT}\nRestart=no\n"
        for n, cmd in commands.items()
    }
    units["quantum-ghost.service"] = (
        f"[Service]\nExecStart=/usr/bin/python3 {GHOST}/main.py\nWorkingDirectory={GHOST}\n"
        "Restart=no\n"
    )
    links = {f"{ETC}/multi-user.target.wants/{n}": f"{ETC}/{n}" for n in units}
    return SandboxSpec(units=units, files=FILES, symlinks=links, wants=sorted(units))


@pytest.fixture(scope="module")
def box() -> Iterator[Sandbox]:
    with Sandbox(spec()).boot() as booted:
        for unit in HEALTHY:
            assert booted.wait_for(unit, ["active"]) == "active", booted.journal(unit)
        for unit in [*BROKEN, "quantum-ghost.service"]:
            assert booted.wait_for(unit, ["failed"]) == "failed", unit
        booted.run("journalctl", "--sync")
        yield booted


def qt201(box: Sandbox) -> dict[str, Any]:
    res = box.qtctl("--format", "json", "doctor", "--select", "QT201")
    assert res.returncode in (0, 1), res.stderr
    return {f["subject"]: f for f in json.loads(res.stdout)["findings"]}


def test_units_python_runs_have_no_qt201(box: Sandbox) -> None:
    found = qt201(box)
    assert not set(HEALTHY) & set(found), {n: found[n]["detail"] for n in set(HEALTHY) & set(found)}


def test_relative_imports_python_refuses_are_still_found(box: Sandbox) -> None:
    found = qt201(box)
    assert set(found) == set(BROKEN)
    for unit, (_, error) in BROKEN.items():
        if error:
            assert f"ImportError: {error}" in box.journal(unit)  # what Python itself said
            assert f"ImportError: {error}" in found[unit]["message"]
    assert "No module named 'not_installed_here'" in box.journal("quantum-guarded.service")
    assert "import not_installed_here will fail" in found["quantum-guarded.service"]["message"]
    script = found["quantum-trader-script.service"]
    assert script["detail"][0].startswith(f"{ROOT}/microservices/trader/main.py:1: .config: ")
    assert "start it with -m" in script["message"]


def test_a_unit_that_cannot_chdir_never_reaches_its_imports(box: Sandbox) -> None:
    unit = "quantum-ghost.service"
    assert box.systemctl("show", "-P", "ExecMainStatus", unit).stdout.strip() == "200"
    assert unit not in qt201(box)  # QT104 working-directory and QT101 name it
    res = box.qtctl("--format", "json", "doctor", "--select", "QT104")
    lint = {f["subject"]: f for f in json.loads(res.stdout)["findings"]}
    assert f"WorkingDirectory={GHOST} does not exist" in lint[unit]["message"]
