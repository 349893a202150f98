"""QT301 only where CR really breaks something: the kernel's shebang, a shell. A CRLF Python
script run through its interpreter runs fine on the real systemd (at most QT302), and fix never
converts it under QT301."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from qtctl.sandbox import BoxFile, Sandbox, SandboxSpec

pytestmark = pytest.mark.sandbox
APP = "/home/qt/app"
VENV = "/opt/quantum/venvs/app"
ETC = "/etc/systemd/system"
LOOP = b"import time\r\nprint('up', flush=True)\r\nwhile True:\r\n    time.sleep(3600)\r\n"
PYTHON_RUN = {  # unit -> ExecStart: every one runs a CRLF .py through the interpreter
    "quantum-py-abs.service": f"/usr/bin/python3 {APP}/abs/main.py",
    "quantum-py-unbuffered.service": "/usr/bin/python3 -u rel/main.py",
    "quantum-py-module.service": "/usr/bin/python3 -m pkg.mod",
    "quantum-py-venv.service": f"{VENV}/bin/python main.py",
    "quantum-py-env.service": "/usr/bin/env python3 envrun.py",
    "quantum-py-direct-lf-shebang.service": f"{APP}/lf_shebang.py",  # kernel reads line 1 only
    "quantum-py-env-vars.service": "/usr/bin/env -i PYTHONUNBUFFERED=1 /usr/bin/python3 envrun.py",
}
UV = {"quantum-py-uv.service": "uv run main.py"}  # no uv in the box: it fails, CR or not
OPTIONAL = {  # a `-` prefixed ExecStartPre= that cannot run: systemd starts the unit anyway
    "quantum-pre-optional.service": f"/bin/sleep 3600\nExecStartPre=-{APP}/not_executable.sh"
}
BROKEN = {  # unit -> ExecStart: the kernel or a shell reads CR
    "quantum-direct-env.service": f"{APP}/direct.py",
    "quantum-bash-wrapper.service": f"/bin/bash {APP}/wrapper.sh",
    "quantum-sh-lf-shebang.service": f"{APP}/lf_shebang.sh",  # then bash reads the CRs
    "quantum-sourced.service": f"/bin/sh -ec '. {APP}/env.sh; exec sleep 3600'",
}
FILES: dict[str, BoxFile | str | bytes] = {
    f"{APP}/abs/main.py": BoxFile(LOOP),
    f"{APP}/rel/main.py": BoxFile(LOOP),
    f"{APP}/pkg/__init__.py": BoxFile(b"\r\n"),
    f"{APP}/pkg/mod.py": BoxFile(LOOP),
    f"{APP}/main.py": BoxFile(b"#!/usr/bin/env python3\r\n" + LOOP),
    f"{APP}/envrun.py": BoxFile(LOOP),
    f"{APP}/direct.py": BoxFile(b"#!/usr/bin/env python3\r\n" + LOOP, 0o755),
    f"{APP}/lf_shebang.py": BoxFile(b"#!/usr/bin/python3\n" + LOOP, 0o755),
    f"{APP}/lf_shebang.sh": BoxFile(b"#!/bin/bash\necho start\r\nexec sleep 3600\r\n", 0o755),
    f"{APP}/wrapper.sh": BoxFile(b"#!/bin/bash\r\necho start\r\nexec sleep 3600\r\n", 0o755),
    f"{APP}/env.sh": BoxFile(b"MODE=live\r\nexport MODE\r\n"),
    f"{APP}/not_executable.sh": BoxFile(b"#!/bin/sh\ntrue\n", 0o644),
    f"{VENV}/pyvenv.cfg": "home = /usr/bin\ninclude-system-site-packages = false\n",
}


def spec() -> SandboxSpec:
    commands = {**PYTHON_RUN, **UV, **OPTIONAL, **BROKEN}
    units = {
        name: f"[Service]\nExecStart={cmd}\nWorkingDirectory={APP}\nRestart=no\n"
        for name, cmd in commands.items()
    }
    links = {f"{ETC}/multi-user.target.wants/{n}": f"{ETC}/{n}" for n in units}
    links[f"{VENV}/bin/python"] = "/usr/bin/python3"
    return SandboxSpec(units=units, files=FILES, symlinks=links, wants=sorted(units))


@pytest.fixture(scope="module")
def box() -> Iterator[Sandbox]:
    with Sandbox(spec()).boot() as booted:
        yield booted


def findings(box: Sandbox, command: str, select: str) -> dict[tuple[str, str], Any]:
    res = box.qtctl("--format", "json", command, "--select", select)
    assert res.returncode in (0, 1), res.stderr
    key = "findings" if command == "doctor" else "repairs"
    return {(f["code"], f["subject"]): f for f in json.loads(res.stdout)[key]}


def test_python_reads_crlf_source_so_interpreter_run_units_run(box: Sandbox) -> None:
    for unit in [*PYTHON_RUN, *OPTIONAL]:
        assert box.wait_for(unit, ["active"]) == "active", box.journal(unit)
    box.run("journalctl", "--sync")
    assert "up" in box.journal("quantum-py-abs.service")


def test_the_kernel_and_shells_choke_on_cr(box: Sandbox) -> None:
    for unit in BROKEN:
        assert box.wait_for(unit, ["failed"]) == "failed", unit
    box.run("journalctl", "--sync")
    direct = box.journal("quantum-direct-env.service")
    assert "/usr/bin/env: \u2018python3\\r\u2019: No such file or directory" in direct
    assert "status=127" in direct
    assert "invalid time interval \u20183600\\r\u2019" in box.journal(
        "quantum-bash-wrapper.service"
    )


def test_qt301_only_for_files_the_kernel_or_a_shell_reads(box: Sandbox) -> None:
    for unit in [*PYTHON_RUN, *BROKEN]:
        box.wait_for(unit, ["active", "failed"])
    found = findings(box, "doctor", "QT301,QT302")
    assert {s for c, s in found if c == "QT301"} == set(BROKEN)
    assert found[("QT301", "quantum-sourced.service")]["message"].startswith(f"{APP}/env.sh has")
    [sources] = [f for (c, _), f in found.items() if c == "QT302" and f["severity"] == "warning"]
    for path in ("abs/main.py", "rel/main.py", "pkg/mod.py", "envrun.py"):
        assert f"{APP}/{path}" in sources["detail"]  # still worth converting: a QT302 warning


def test_fix_never_converts_interpreter_run_sources_under_qt301(box: Sandbox) -> None:
    for unit in [*PYTHON_RUN, *BROKEN]:
        box.wait_for(unit, ["active", "failed"])
    before = box.host_path(f"{APP}/abs/main.py").read_bytes()
    plan = findings(box, "fix", "QT301")
    assert {s for c, s in plan if c == "QT301"} == set(BROKEN)
    applied = box.qtctl("--format", "json", "fix", "--select", "QT301", "--apply")
    assert applied.returncode in (0, 1), applied.stderr
    assert box.host_path(f"{APP}/abs/main.py").read_bytes() == before  # checkout left clean
    assert box.host_path(f"{APP}/envrun.py").read_bytes() == LOOP
    assert box.host_path(f"{APP}/wrapper.sh").read_bytes().count(b"\r") == 0


def test_an_optional_command_that_cannot_run_does_not_fail_the_unit(box: Sandbox) -> None:
    unit = "quantum-pre-optional.service"
    assert box.wait_for(unit, ["active"]) == "active"
    deadline = time.monotonic() + 10
    skipped = f"Executable {APP}/not_executable.sh missing, skipping: Permission denied"
    while skipped not in box.journal(unit) and time.monotonic() < deadline:
        box.run("journalctl", "--sync")
        time.sleep(0.2)
    assert skipped in box.journal(unit)  # systemd skipped it and started the unit
    assert ("QT303", unit) not in findings(box, "doctor", "QT303")
