"""sys.path changes made through names (`root = Path(__file__)...; sys.path.insert(0,
str(root))`), os.getcwd() and '.', followed as Python runs them, on a real systemd; QT202 sees
them, dot-folders included unless code.exclude_dirs names them."""

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
IMPORT = "from ai_engine.stops import compute\n"
FILES = {
    f"{ROOT}/ai_engine/__init__.py": "",
    f"{ROOT}/ai_engine/stops.py": "def compute():\n    return 1\n",
    f"{ROOT}/microservices/ai_engine/__init__.py": "# stale copy left behind\n",
    f"{ROOT}/microservices/good/sub/main.py": "import sys\nfrom pathlib import Path\n"
    f"root = Path(__file__).resolve().parents[3]\nsys.path.insert(0, str(root))\n{IMPORT}{LOOP}",
    f"{ROOT}/microservices/joined/main.py": "import os, sys\n"
    "here = os.path.dirname(os.path.abspath(__file__))\nproject = os.path.join(here, '..', '..')\n"
    f"sys.path.append(project)\n{IMPORT}{LOOP}",
    f"{ROOT}/microservices/bad/main.py": "import os, sys\n"
    "here = os.path.dirname(os.path.abspath(__file__))\n"
    f"sys.path.insert(0, os.path.join(here, '..'))\n{IMPORT}{LOOP}",
    f"{ROOT}/microservices/svc_m/__init__.py": "",
    f"{ROOT}/microservices/svc_m/main.py": "import sys\nfrom pathlib import Path\n"
    f"root = Path(__file__).resolve().parents[2]\nsys.path.insert(0, str(root))\n{IMPORT}{LOOP}",
    f"{ROOT}/microservices/cwd/main.py": f"import os, sys\nbase = os.getcwd()\n"
    f"sys.path.append(base)\n{IMPORT}{LOOP}",
    f"{ROOT}/microservices/dot/main.py": f"import sys\nsys.path.insert(0, '.')\n{IMPORT}{LOOP}",
    f"{ROOT}/.hidden/tools/run.py": "import os, sys\n"
    "sys.path.insert(0, os.path.dirname(__file__))\n",
}
UNITS = {  # unit -> (ExecStart, WorkingDirectory)
    "quantum-good.service": (f"{ROOT}/microservices/good/sub/main.py", ""),
    "quantum-joined.service": (f"{ROOT}/microservices/joined/main.py", ""),
    "quantum-cwd.service": (f"{ROOT}/microservices/cwd/main.py", ROOT),
    "quantum-dot.service": (f"{ROOT}/microservices/dot/main.py", ROOT),
    "quantum-bad.service": (f"{ROOT}/microservices/bad/main.py", ""),
    # -m from microservices/, where the stale ai_engine would win but for the module's own insert
    "quantum-module.service": ("-m svc_m.main", f"{ROOT}/microservices"),
}
FAILING = {"quantum-bad.service"}


def spec() -> SandboxSpec:
    units = {
        name: f"[Service]\nExecStart=/usr/bin/python3 {script}\nRestart=no\n"
        + (f"WorkingDirectory={workdir}\n" if workdir else "")
        for name, (script, workdir) in UNITS.items()
    }
    links = {f"{ETC}/multi-user.target.wants/{n}": f"{ETC}/{n}" for n in units}
    files = {**FILES, "/etc/qtctl/qtctl.toml": f'[fleet]\ncode_roots = ["{ROOT}"]\n'}
    return SandboxSpec(units=units, files=files, symlinks=links, wants=sorted(units))


@pytest.fixture(scope="module")
def box() -> Iterator[Sandbox]:
    with Sandbox(spec()).boot() as booted:
        for unit in UNITS:
            state = "failed" if unit in FAILING else "active"
            assert booted.wait_for(unit, [state]) == state, booted.journal(unit)
        booted.run("journalctl", "--sync")
        yield booted


def doctor(box: Sandbox, select: str) -> dict[tuple[str, str], Any]:
    res = box.qtctl("--format", "json", "doctor", "--select", select)
    assert res.returncode in (0, 1), res.stderr
    return {(f["code"], f["subject"]): f for f in json.loads(res.stdout)["findings"]}


def test_sys_path_through_names_and_cwd_is_followed(box: Sandbox) -> None:
    found = doctor(box, "QT201")
    assert {s for _, s in found} == FAILING
    bad = found[("QT201", "quantum-bad.service")]
    assert "No module named 'ai_engine.stops'" in box.journal("quantum-bad.service")
    assert f"shadowed by {ROOT}/microservices/ai_engine (no stops there)" in bad["message"]
    assert "sys.path hack at line 3" in bad["message"]


def test_qt202_sees_name_based_hacks_and_dot_folders(box: Sandbox) -> None:
    [summary] = [f for (c, _), f in doctor(box, "QT202").items() if f["cause"] == "file-relative"]
    lines = {line.split(": ")[0] for line in summary["detail"]}
    assert lines == {
        f"{ROOT}/microservices/good/sub/main.py:4",
        f"{ROOT}/microservices/joined/main.py:4",
        f"{ROOT}/microservices/bad/main.py:3",
        f"{ROOT}/microservices/svc_m/main.py:4",
        f"{ROOT}/.hidden/tools/run.py:2",
    }
    box.write(
        "/etc/qtctl/qtctl.toml",
        f'[fleet]\ncode_roots = ["{ROOT}"]\n[code]\nexclude_dirs = [".hidden"]\n',
    )
    try:
        [summary] = [f for f in doctor(box, "QT202").values() if f["cause"] == "file-relative"]
    finally:
        box.write("/etc/qtctl/qtctl.toml", f'[fleet]\ncode_roots = ["{ROOT}"]\n')
    assert not [line for line in summary["detail"] if "/.hidden/" in line]
