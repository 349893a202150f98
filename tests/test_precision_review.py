"""Issue 22, second outside review: false findings removed, each checked against the real
systemd in one shared sandbox, with the true finding still found on the broken shape.

F1/F7 interpreter options that take a value; F16 conditional imports; F9 a limits-only drop-in;
F13 ProtectHome= with binds; F17 what systemd makes of `Environment=A=b # note`; F3 a `Wants=`
of a missing unit; F8 a unit protected through its alias, and `Restart=no` written."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from qtctl.sandbox import Sandbox, SandboxSpec

pytestmark = pytest.mark.sandbox
ROOT = "/home/qt/quantum_trader"
ETC = "/etc/systemd/system"
LOOP = "import time\nwhile True:\n    time.sleep(3600)\n"
OK = "User=daemon\nMemoryMax=64M\nCPUQuota=10%\nRestart=on-failure\n"
SLEEP = "ExecStart=/bin/sleep 3600\n"
PROFILER = "import os\nif os.environ.get('ENABLE_PROFILER'):\n    import pyinstrument_absent\n"


def py(command: str, extra: str = OK) -> str:
    return f"[Service]\nWorkingDirectory={ROOT}\nExecStart=/usr/bin/python3 {command}\n{extra}"


UNITS = {
    # F1/F7: healthy, and the same options in front of a module / script that is really broken
    "quantum-alpha-scan.service": py("-W ignore::DeprecationWarning -X dev -m alpha.scanner.main"),
    "quantum-alpha-broken.service": py("-W ignore -X dev -m alpha.scanner.broken"),
    "quantum-xi.service": py(f"-X dev -uB {ROOT}/xi/main.py"),
    "quantum-xi-missing.service": py(f"-X dev -uB {ROOT}/xi/nowhere.py"),
    # F16: an import under a condition, on a running unit, on a failing one; a certain import
    "quantum-prof.service": py(f"{ROOT}/prof/main.py"),
    "quantum-prof-on.service": py(f"{ROOT}/prof/main.py", f"{OK}Environment=ENABLE_PROFILER=1\n"),
    "quantum-prof-top.service": py(f"{ROOT}/prof/top.py"),
    # F13: ProtectHome= with the code folder bound back in, and without
    "quantum-hardened2.service": py(
        f"{ROOT}/dyn/main.py", f"{OK}ProtectHome=tmpfs\nBindReadOnlyPaths=/home/qt\n"
    ),
    "quantum-hardened-yes.service": f"[Service]\nExecStart=/usr/bin/python3 {ROOT}/dyn/main.py\n"
    f"{OK}ProtectHome=yes\nBindReadOnlyPaths={ROOT}/dyn\n",
    "quantum-hidden-tmpfs.service": f"[Service]\nExecStart=/usr/bin/python3 {ROOT}/dyn/main.py\n"
    f"{OK}ProtectHome=tmpfs\n",
    # F17: an inline comment in Environment=
    "quantum-comment.service": f"[Service]\n{SLEEP}{OK}Environment=MODE=paper # comment\n",
    # F3: a weak and a hard dependency on units that do not exist
    "quantum-iota.service": "[Unit]\nWants=quantum-optional-cache.service\n"
    f"After=quantum-optional-cache.service\n[Service]\n{SLEEP}{OK}",
    "quantum-lambda.service": "[Unit]\nRequires=quantum-cache.service\n"
    f"After=quantum-cache.service\n[Service]\n{SLEEP}{OK}",
    # F8: protected only through its alias; Restart=no written; no Restart= at all
    "quantum-risk-guard.service": f"[Service]\n{SLEEP}User=daemon\nMemoryMax=64M\nCPUQuota=10%\n"
    "Restart=no\n[Install]\nAlias=quantum-emergency-exit-guard.service\n",
    "quantum-written-no.service": f"[Service]\n{SLEEP}User=daemon\nMemoryMax=64M\nCPUQuota=10%\n"
    "Restart=no\n",
    "quantum-bare.service": f"[Service]\n{SLEEP}User=daemon\nMemoryMax=64M\nCPUQuota=10%\n",
}
FILES = {
    f"{ROOT}/alpha/__init__.py": "",
    f"{ROOT}/alpha/scanner/__init__.py": "",
    f"{ROOT}/alpha/scanner/helper.py": "def helper():\n    pass\n",
    f"{ROOT}/alpha/scanner/main.py": f"from . import helper\n{LOOP}",
    f"{ROOT}/alpha/scanner/broken.py": f"import alpha_dependency_absent\n{LOOP}",
    f"{ROOT}/xi/main.py": LOOP,
    f"{ROOT}/prof/main.py": f"{PROFILER}{LOOP}",
    f"{ROOT}/prof/top.py": f"import pyinstrument_absent\n{LOOP}",
    f"{ROOT}/dyn/main.py": LOOP,
}
STARTED = [u for u in UNITS if u != "quantum-lambda.service"]


@pytest.fixture(scope="module")
def box() -> Iterator[Sandbox]:
    links = {f"{ETC}/quantum-emergency-exit-guard.service": f"{ETC}/quantum-risk-guard.service"}
    spec = SandboxSpec(units=UNITS, files=FILES, symlinks=links, wants=list(UNITS))
    with Sandbox(spec).boot() as booted:
        time.sleep(2)  # the failing ones have failed at least once
        booted.systemctl("daemon-reload")  # logged again, now that the journal runs
        booted.run("journalctl", "--sync")
        yield booted


@pytest.fixture(scope="module")
def found(box: Sandbox) -> dict[tuple[str, str], dict[str, Any]]:
    res = box.qtctl("--format", "json", "doctor")
    assert res.returncode in (0, 1), res.stderr
    return {(f["code"], f["subject"]): f for f in json.loads(res.stdout)["findings"]}


def show(box: Sandbox, unit: str, prop: str) -> str:
    return box.systemctl("show", "-P", prop, unit).stdout.strip()


def test_interpreter_options_with_values(box: Sandbox, found: dict[tuple[str, str], Any]) -> None:
    """F1/F7: `-W ARG -X ARG -m mod` and `-X dev -uB script` run (systemd: active); the broken
    module and the missing script behind the same options are still QT201 with their own names."""
    for unit in ("quantum-alpha-scan.service", "quantum-xi.service"):
        assert show(box, unit, "ActiveState") == "active", box.journal(unit)
        assert ("QT201", unit) not in found
    broken = found[("QT201", "quantum-alpha-broken.service")]
    assert broken["severity"] == "error" and "alpha_dependency_absent" in broken["message"]
    missing = found[("QT201", "quantum-xi-missing.service")]
    assert "xi/nowhere.py" in missing["message"] and "/dev" not in missing["message"]


def test_conditional_import(box: Sandbox, found: dict[tuple[str, str], Any]) -> None:
    """F16: an import under `if os.environ.get(...)` is not certain to run: on the running unit
    an info without a repair; where the condition holds and the unit dies of it a warning; a
    top-level import that fails is still the error, with the repair."""
    assert show(box, "quantum-prof.service", "ActiveState") == "active"
    running = found[("QT201", "quantum-prof.service")]
    assert running["severity"] == "info" and not running["fixable"]
    assert "ENABLE_PROFILER" in running["message"]
    assert "No module named 'pyinstrument_absent'" in box.journal("quantum-prof-on.service")
    failing = found[("QT201", "quantum-prof-on.service")]
    assert failing["severity"] == "warning" and not failing["fixable"]
    top = found[("QT201", "quantum-prof-top.service")]
    assert top["severity"] == "error" and top["fixable"]


def test_protect_home_with_binds(box: Sandbox, found: dict[tuple[str, str], Any]) -> None:
    """F13: ProtectHome=tmpfs + BindReadOnlyPaths=/home/qt runs its code from /home; without
    the bind, or with ProtectHome=yes (an inaccessible /home: the bind below it does not help
    User=daemon), the unit cannot open its script, and protect-home says so."""
    unit = "quantum-hardened2.service"
    assert show(box, unit, "ActiveState") == "active", box.journal(unit)
    assert "protect-home" not in found.get(("QT104", unit), {}).get("cause", "")
    for unit in ("quantum-hidden-tmpfs.service", "quantum-hardened-yes.service"):
        assert "can't open file" in box.journal(unit)
        assert "protect-home" in found[("QT104", unit)]["cause"]


def test_environment_inline_comment(box: Sandbox, found: dict[tuple[str, str], Any]) -> None:
    """F17: systemd sets MODE=paper and ignores `#` and `comment` as invalid assignments; the
    finding stays and says exactly that."""
    assert show(box, "quantum-comment.service", "Environment") == "MODE=paper"
    logged = box.run("journalctl", "-b", "--no-pager", "-o", "cat").stdout
    assert "Invalid environment assignment, ignoring: #" in logged
    assert "Invalid environment assignment, ignoring: comment" in logged
    text = " ".join(found[("QT104", "quantum-comment.service")]["detail"])
    assert "it sets MODE=paper and ignores '#', 'comment' as invalid assignments" in text


def test_wants_of_missing_unit(box: Sandbox, found: dict[tuple[str, str], Any]) -> None:
    """F3: systemd starts a unit whose Wants= names no unit; one that Requires= it stays down.
    The first is an info, the second a warning."""
    assert show(box, "quantum-iota.service", "ActiveState") == "active"
    assert show(box, "quantum-optional-cache.service", "LoadState") == "not-found"
    weak = found.get(("QT102", "quantum-optional-cache.service"))
    assert weak is None or weak["severity"] == "info"
    refused = box.systemctl("restart", "quantum-lambda.service")
    assert refused.returncode != 0 and "quantum-cache.service not found" in refused.stderr
    assert found[("QT102", "quantum-cache.service")]["severity"] == "warning"


def test_no_restart_as_fix_sees_it(box: Sandbox, found: dict[tuple[str, str], Any]) -> None:
    """F8: a unit protected only through its alias is an info without a repair, and fix holds
    it; `Restart=no` written says fix adds the drop-in only when named; no Restart= is the
    plain fixable warning."""
    names = show(box, "quantum-risk-guard.service", "Names").split()
    assert "quantum-emergency-exit-guard.service" in names
    guard = found[("QT104", "quantum-risk-guard.service")]
    assert guard["severity"] == "info" and not guard["fixable"]
    written = found[("QT104", "quantum-written-no.service")]
    assert "--only quantum-written-no.service" in written["message"]
    bare = found[("QT104", "quantum-bare.service")]
    assert bare["severity"] == "warning" and bare["fixable"]
    plan = box.qtctl("--format", "json", "fix", "--select", "QT104")
    assert "quantum-risk-guard.service" not in _planned(plan.stdout)
    assert "quantum-bare.service" in _planned(plan.stdout)


def _planned(output: str) -> list[str]:
    doc = json.loads(output)
    return [r["subject"] for r in doc.get("repairs", []) if not r.get("held")]


def test_limits_drop_in_is_not_stale(box: Sandbox) -> None:
    """F9: a prefix drop-in of MemoryMax=/CPUQuota= is applied to the running units at
    daemon-reload (their cgroup changes, their process does not): no QT107; a drop-in that sets
    Environment= is still QT107 on its unit."""
    unit = "quantum-xi.service"
    pid = show(box, unit, "MainPID")
    time.sleep(1.5)  # newer than every process start, past QT107's slack
    limits = "[Service]\nMemoryMax=300M\nCPUQuota=40%\n"
    box.write(f"{ETC}/quantum-.service.d/10-limits.conf", limits)
    box.write(f"{ETC}/quantum-bare.service.d/env.conf", "[Service]\nEnvironment=MODE=live\n")
    box.systemctl("daemon-reload", check=True)
    assert show(box, unit, "MainPID") == pid
    assert show(box, unit, "MemoryMax") == str(300 * 2**20)
    assert _cgroup_limits(box, unit) == (str(300 * 2**20), "40000")
    res = box.qtctl("--format", "json", "doctor", "--select", "QT107")
    stale = {f["subject"] for f in json.loads(res.stdout)["findings"]}
    assert stale == {"quantum-bare.service"}, res.stdout


def _cgroup_limits(box: Sandbox, unit: str) -> tuple[str, str]:
    """The memory limit and CPU quota the kernel holds for the unit (cgroup v1 or v2)."""
    group = show(box, unit, "ControlGroup")
    v1 = (f"memory{group}/memory.limit_in_bytes", f"cpu{group}/cpu.cfs_quota_us")
    read = [box.run("cat", f"/sys/fs/cgroup/{p}").stdout.strip() for p in v1]
    if all(read):
        return read[0], read[1]
    v2 = box.run("cat", f"/sys/fs/cgroup/unified{group}/memory.max").stdout.strip()
    quota = box.run("cat", f"/sys/fs/cgroup/unified{group}/cpu.max").stdout.split()[:1]
    return v2, quota[0] if quota else ""
