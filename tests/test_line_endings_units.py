"""QT301/QT303 on a real systemd: scripts that really fail, fixed, restarted, undone exactly."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from qtctl.sandbox import BoxFile, Sandbox, SandboxSpec

pytestmark = pytest.mark.sandbox
CODE = "/home/qt/quantum_trader/scripts"
SCRIPTS = {
    "exit_watch.sh": BoxFile(b"#!/bin/bash\r\necho watching\r\nexec sleep 3600\r\n", 0o755),
    "bom_watch.sh": BoxFile(b"\xef\xbb\xbf#!/bin/sh\nexec sleep 3600\n", 0o755),
    "body_crlf.sh": BoxFile(b"echo start\r\nsleep 3600\r\n", 0o644),
    "no_exec.sh": BoxFile(b"#!/bin/sh\nexec sleep 3600\n", 0o644),
    "bad_shebang.py": BoxFile(b"#!/usr/bin/python9\nimport time\n", 0o755),
}
UNITS = {
    "quantum-exit-watch.service": f"{CODE}/exit_watch.sh",
    "quantum-bom-watch.service": f"{CODE}/bom_watch.sh",
    "quantum-body-crlf.service": f"/bin/bash {CODE}/body_crlf.sh",
    "quantum-no-exec.service": f"{CODE}/no_exec.sh",
    "quantum-bad-shebang.service": f"{CODE}/bad_shebang.py",
    "quantum-opt-app.service": "/bin/sleep 3600\nWorkingDirectory=/opt/quantum/app",
}
ETC = "/etc/systemd/system"


def spec() -> SandboxSpec:
    units = {name: f"[Service]\nExecStart={cmd}\n" for name, cmd in UNITS.items()}
    links = {f"{ETC}/multi-user.target.wants/{n}": f"{ETC}/{n}" for n in units}  # enabled
    files = {f"{CODE}/{name}": item for name, item in SCRIPTS.items()}
    files["/opt/quantum/app/worker.py"] = BoxFile(b"import os\r\n")  # a root only a unit names
    return SandboxSpec(units=units, files=files, symlinks=links, wants=sorted(units))


def boot(sandbox: Callable[[SandboxSpec], Sandbox]) -> Sandbox:
    box = sandbox(spec())
    for unit in UNITS:
        box.wait_for(unit, ["active" if unit == "quantum-opt-app.service" else "failed"])
    box.run("journalctl", "--sync")
    return box


def test_scripts_that_cannot_run_are_found(sandbox: Callable[[SandboxSpec], Sandbox]) -> None:
    box = boot(sandbox)
    res = box.qtctl("--format", "json", "doctor", "--select", "QT101,QT301,QT303")
    found = {(f["code"], f["subject"]): f for f in json.loads(res.stdout)["findings"]}
    exit_watch = found[("QT301", "quantum-exit-watch.service")]
    assert exit_watch["message"] == f"{CODE}/exit_watch.sh has CRLF line endings (3 of 3 lines)"
    assert exit_watch["related"] == ["QT101 quantum-exit-watch.service"]
    assert found[("QT101", "quantum-exit-watch.service")]["cause"] == "bad-interpreter"
    assert (
        "UTF-8 BOM before the shebang" in found[("QT301", "quantum-bom-watch.service")]["message"]
    )
    assert ("QT301", "quantum-body-crlf.service") in found
    assert found[("QT303", "quantum-no-exec.service")]["cause"] == "no-exec-bit"
    assert "python9 does not exist" in found[("QT303", "quantum-bad-shebang.service")]["message"]
    sources = box.qtctl("--format", "json", "doctor", "--select", "QT302")
    [summary] = [f for f in json.loads(sources.stdout)["findings"] if f["severity"] == "warning"]
    assert "/opt/quantum/app/worker.py" in summary["detail"]  # derived from WorkingDirectory
    assert "/opt/quantum/app" in summary["subject"]


def test_fix_converts_restarts_and_undo_restores_bytes(
    sandbox: Callable[[SandboxSpec], Sandbox],
) -> None:
    box = boot(sandbox)
    res = box.qtctl("--format", "json", "fix", "--select", "QT101,QT301", "--apply", "--unsafe")
    doc = json.loads(res.stdout)
    results = {(r["code"], r["subject"]): r["result"] for r in doc["repairs"]}
    for unit in (
        "quantum-exit-watch.service",
        "quantum-bom-watch.service",
        "quantum-body-crlf.service",
    ):
        assert results[("QT301", unit)] == "fixed"
        assert results[("QT101", unit)] == "fixed"  # restarted in the same run, once LF
        assert box.systemctl("is-active", unit).stdout.strip() == "active"
    assert results[("QT101", "quantum-no-exec.service")] == "held"  # chmod +x is a human's call
    assert results[("QT101", "quantum-bad-shebang.service")] == "held"
    info = box.run("stat", "-c", "%a %U", f"{CODE}/exit_watch.sh").stdout.strip()
    assert info == "755 root"
    assert box.run("cat", f"{CODE}/exit_watch.sh").stdout == (
        "#!/bin/bash\necho watching\nexec sleep 3600\n"
    )

    again = box.qtctl("--format", "json", "fix", "--select", "QT301", "--apply")
    assert json.loads(again.stdout)["repairs"] == []  # nothing left: the fix is idempotent

    undo = box.qtctl("fix", "--undo", doc["record"])
    assert undo.returncode == 0, undo.stderr
    for name, item in SCRIPTS.items():
        assert box.host_path(f"{CODE}/{name}").read_bytes() == item.content
