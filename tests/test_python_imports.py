"""QT201/QT203/QT204 on a real systemd: the incident's code tree, services that really fail."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from qtctl.sandbox import Sandbox, SandboxSpec

pytestmark = pytest.mark.sandbox
ROOT = "/home/qt/quantum_trader"
VENV = "/opt/quantum/venvs/ai-engine"
SITE = f"{VENV}/lib/python3.11/site-packages"
HACK = "sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))"
IMPORT = "from ai_engine.risk_kernel_stops import compute_stops"
LOOP = "import time\nwhile True:\n    time.sleep(3600)\n"
FILES = {
    f"{ROOT}/ai_engine/__init__.py": "",
    f"{ROOT}/ai_engine/risk_kernel_stops.py": "def compute_stops():\n    return 1\n",
    f"{ROOT}/microservices/ai_engine/__init__.py": "# stale copy left behind\n",
    f"{ROOT}/microservices/risk_proposal/main.py": f"import os, sys\n{HACK}\n{IMPORT}\n{LOOP}",
    f"{ROOT}/microservices/signal/main.py": f"{IMPORT}\n{LOOP}",
    f"{ROOT}/microservices/__init__.py": "",
    f"{ROOT}/microservices/exporter/__init__.py": "",
    f"{ROOT}/microservices/exporter/__main__.py": f"import ai_engine.risk_kernel_stops\n{LOOP}",
    f"{ROOT}/microservices/feed/main.py": f"import quantfeed\n{LOOP}",
    "/etc/quantum/env-feed.env": f"PYTHONPATH={ROOT}\n",
    "/etc/quantum/env-wrong.env": "PYTHONPATH=/opt/elsewhere\n",
    f"{VENV}/pyvenv.cfg": "home = /usr/bin\ninclude-system-site-packages = false\n",
    f"{SITE}/quantfeed/__init__.py": "",
}
UNITS = {
    "quantum-risk-proposal.service": f"ExecStart=/usr/bin/python3 {ROOT}/microservices/"
    f"risk_proposal/main.py\nWorkingDirectory={ROOT}",
    "quantum-signal.service": f"ExecStart=/usr/bin/python3 {ROOT}/microservices/signal/main.py",
    "quantum-exporter.service": f"ExecStart=/usr/bin/python3 -m microservices.exporter\n"
    f"WorkingDirectory={ROOT}",
    "quantum-env-feed.service": f"ExecStart=/usr/bin/python3 {ROOT}/microservices/signal/main.py"
    "\nEnvironmentFile=/etc/quantum/env-feed.env",
    "quantum-feed.service": f"ExecStart=/usr/bin/python3 {ROOT}/microservices/feed/main.py",
    "quantum-env-wrong.service": f"ExecStart=/usr/bin/python3 {ROOT}/microservices/signal/"
    "main.py\nEnvironmentFile=/etc/quantum/env-wrong.env",
    "quantum-venv-feed.service": f"ExecStart={VENV}/bin/python3 {ROOT}/microservices/feed/main.py",
}
ETC = "/etc/systemd/system"


def spec() -> SandboxSpec:
    units = {n: f"[Service]\n{body}\nRestart=no\n" for n, body in UNITS.items()}
    links = {f"{ETC}/multi-user.target.wants/{n}": f"{ETC}/{n}" for n in units}
    links[f"{VENV}/bin/python3"] = "/usr/bin/python3"
    return SandboxSpec(units=units, files=FILES, symlinks=links, wants=sorted(units))


def boot(sandbox: Callable[[SandboxSpec], Sandbox]) -> Sandbox:
    box = sandbox(spec())
    for unit in (
        "quantum-risk-proposal.service",
        "quantum-signal.service",
        "quantum-feed.service",
        "quantum-env-wrong.service",
    ):
        box.wait_for(unit, ["failed"])
    for unit in (
        "quantum-exporter.service",
        "quantum-env-feed.service",
        "quantum-venv-feed.service",
    ):
        assert box.wait_for(unit, ["active"]) == "active"
    return box


def test_import_failures_are_predicted_with_their_root_cause(
    sandbox: Callable[[SandboxSpec], Sandbox],
) -> None:
    box = boot(sandbox)
    res = box.qtctl("--format", "json", "doctor", "--select", "QT2")
    found = {(f["code"], f["subject"]): f for f in json.loads(res.stdout)["findings"]}
    incident = found[("QT201", "quantum-risk-proposal.service")]
    assert incident["message"] == (
        f"import ai_engine.risk_kernel_stops will fail: shadowed by {ROOT}/microservices/"
        "ai_engine (no risk_kernel_stops there), put first on sys.path by sys.path hack at line "
        f"2; the complete ai_engine lives in {ROOT}, which is not on sys.path"
    )
    signal = found[("QT201", "quantum-signal.service")]
    assert signal["message"] == (
        "import ai_engine.risk_kernel_stops will fail: PYTHONPATH not set: ai_engine lives in "
        f"{ROOT}, which is not on sys.path"
    )
    wrong = found[("QT204", "quantum-feed.service")]
    assert (
        wrong["message"] == f"/usr/bin/python3 has no quantfeed; installed in {SITE}: run "
        "the unit with that venv"
    )
    healthy = {"quantum-exporter.service", "quantum-env-feed.service", "quantum-venv-feed.service"}
    assert not [key for key in found if key[1] in healthy]
    # the prediction matches what really happened
    journal = box.journal("quantum-risk-proposal.service")
    assert "No module named 'ai_engine.risk_kernel_stops'" in journal


def test_fix_proves_a_pythonpath_drop_in_and_the_unit_runs(
    sandbox: Callable[[SandboxSpec], Sandbox],
) -> None:
    box = boot(sandbox)
    res = box.qtctl("--format", "json", "fix", "--select", "QT101,QT201", "--apply", "--unsafe")
    repairs = {(r["code"], r["subject"]): r for r in json.loads(res.stdout)["repairs"]}
    drop_in = f"{ETC}/quantum-signal.service.d/qtctl-python.conf"
    assert repairs[("QT201", "quantum-signal.service")]["result"] == "fixed"
    assert box.run("cat", drop_in).stdout == f'[Service]\nEnvironment="PYTHONPATH={ROOT}"\n'
    assert repairs[("QT101", "quantum-signal.service")]["result"] == "fixed"
    assert box.systemctl("is-active", "quantum-signal.service").stdout.strip() == "active"
    incident = repairs[("QT201", "quantum-risk-proposal.service")]
    assert incident["result"] == "fixed"  # --unsafe: the proven source patch was applied
    assert repairs[("QT101", "quantum-risk-proposal.service")]["result"] == "fixed"
    assert box.systemctl("is-active", "quantum-risk-proposal.service").stdout.strip() == "active"
    assert box.run("test", "-e", f"{ETC}/quantum-risk-proposal.service.d").returncode == 1
    wrong = repairs[("QT201", "quantum-env-wrong.service")]
    assert wrong["held"] == (
        "PYTHONPATH comes from EnvironmentFile /etc/quantum/env-wrong.env, "
        f"which overrides Environment=: add {ROOT} there"
    )
    main = f"{ROOT}/microservices/risk_proposal/main.py"
    undo = box.qtctl("fix", "--undo", json.loads(res.stdout)["record"])
    assert undo.returncode == 0, undo.stderr
    assert box.host_path(main).read_text() == FILES[main]  # restored byte for byte


def test_the_incident_needs_a_source_patch_shown_as_a_diff(
    sandbox: Callable[[SandboxSpec], Sandbox],
) -> None:
    box = boot(sandbox)
    res = box.qtctl("--format", "json", "fix", "--select", "QT201")
    repairs = {r["subject"]: r for r in json.loads(res.stdout)["repairs"]}
    incident = repairs["quantum-risk-proposal.service"]
    assert incident["held"].startswith("an environment fix cannot help (PYTHONPATH=")
    assert incident["held"].endswith("the patch below changes service code: apply it with --unsafe")
    assert f"-{HACK}\n" in incident["diff"]
    assert (
        "+sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname("
        "os.path.abspath(__file__)), '..', '..')))\n"
    ) in incident["diff"]
    table = box.qtctl("fix", "--select", "QT201")
    assert "-sys.path.insert(0, os.path.dirname(os.path.dirname(" in table.stdout
