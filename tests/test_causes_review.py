"""The causes an outside reviewer found wrong (issue 22's review, F10, F14, F15, F18), each
against the real systemd in one sandbox, through `qtctl doctor --format json` and `qtctl fix`.

- F10: a run whose process's lines reach the journal after systemd's own (here: a python that
  starts 10 s after the main process exited) is not classified `exit-code` from nothing, and is
  not counted as another cause; a fast crash loop keeps one cause over repeated doctor runs.
- F14: `[Errno 13]` on a script that `ProtectHome=yes` hides is `sandbox-denied`.
- F18: a bare `ConnectionRefusedError` on the fleet's Redis, which doctor cannot reach (QT400),
  is `dependency-down`.
- F15: a package one folder below a code root is in the code roots: fix offers the PYTHONPATH
  drop-in; with two such folders it holds, naming both.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from qtctl.sandbox import Sandbox, SandboxSpec

pytestmark = [pytest.mark.sandbox, pytest.mark.slow]
ROOT = "/home/qt/quantum_trader"
LOOP = "import time\nwhile True:\n    time.sleep(3600)\n"
LATE_DELAY = 10  # seconds between the main process's exit and its python's own line
LATE = "quantum-late.service"
FAST = "quantum-fast-loop.service"


def service(exec_start: str, extra: str = "") -> str:
    return (
        f"[Unit]\nDescription=review cause\nStartLimitIntervalSec=0\n[Service]\n"
        f"ExecStart={exec_start}\n{extra}\n[Install]\nWantedBy=multi-user.target\n"
    )


UNITS = {
    # the main process exits at once; the python whose error explains it writes 8 s later
    LATE: service(
        f"/bin/sh -c '(sleep {LATE_DELAY}; exec /usr/bin/python3 /opt/quantum/late/main.py) "
        "& exit 2'",
        "KillMode=process\nRestart=always\nRestartSec=15\n",
    ),
    FAST: service(
        "/usr/bin/python3 /opt/quantum/fast/main.py", "Restart=always\nRestartSec=300ms\n"
    ),
    "quantum-hidden.service": service(
        f"/usr/bin/python3 {ROOT}/dyn/main.py", "User=daemon\nProtectHome=yes\n"
    ),
    "quantum-redis-feed.service": service(f"/usr/bin/python3 {ROOT}/rfeed/main.py", "User=daemon"),
    "quantum-other-port.service": service(f"/usr/bin/python3 {ROOT}/rfeed/other.py", "User=daemon"),
    "quantum-pp3.service": service(
        f"/usr/bin/python3 {ROOT}/apps/pp3/main.py",
        f"WorkingDirectory=/\nEnvironment=PYTHONPATH={ROOT}/libs",
    ),
    "quantum-ambig.service": service(
        f"/usr/bin/python3 {ROOT}/apps/amb/main.py",
        "WorkingDirectory=/",
    ),
}
FILES: dict[str, str] = {
    f"{ROOT}/dyn/main.py": LOOP,
    f"{ROOT}/rfeed/main.py": "import socket\nsocket.create_connection(('127.0.0.1', 6379))\n",
    f"{ROOT}/rfeed/other.py": "import socket\nsocket.create_connection(('127.0.0.1', 6390))\n",
    f"{ROOT}/libs/qlib/__init__.py": "",
    f"{ROOT}/libs3/qlib3/__init__.py": "",
    f"{ROOT}/apps/pp3/main.py": "import qlib\nimport qlib3\n" + LOOP,
    f"{ROOT}/svc_a/common/__init__.py": "",
    f"{ROOT}/svc_a/common/settings.py": "X = 'a'\n",
    f"{ROOT}/svc_b/common/__init__.py": "",
    f"{ROOT}/svc_b/common/settings.py": "X = 'b'\n",
    f"{ROOT}/apps/amb/main.py": "from common.settings import X\n" + LOOP,
}
SELECT = ("--select", "QT101,QT103")


def doctor(box: Sandbox) -> dict[str, dict[str, Any]]:
    res = box.qtctl("--format", "json", "doctor", *SELECT)
    assert res.returncode in (0, 1), res.stderr
    return {f["subject"]: f for f in json.loads(res.stdout)["findings"]}


def restarts(box: Sandbox, unit: str) -> int:
    return int(box.systemctl("show", "-P", "NRestarts", unit).stdout.strip() or 0)


def wait(what: str, ready: Callable[[], bool], timeout: float = 40.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ready():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture(scope="module")
def box() -> Iterator[Sandbox]:
    etc = "/etc/systemd/system"
    links = {f"{etc}/multi-user.target.wants/{n}": f"{etc}/{n}" for n in UNITS}  # enabled
    spec = SandboxSpec(units=UNITS, files=FILES, symlinks=links, wants=sorted(UNITS))
    with Sandbox(spec) as sandbox:
        for unit in ("quantum-hidden.service", "quantum-redis-feed.service"):
            assert sandbox.wait_for(unit, ["failed"]) == "failed"
        assert sandbox.wait_for("quantum-other-port.service", ["failed"]) == "failed"
        yield sandbox


@pytest.fixture(scope="module")
def late_run(box: Sandbox) -> dict[str, Any]:
    """Doctor's finding for LATE read just after its second failure, before that run's python
    wrote its line (the first run's line is in)."""
    wait("the first run's own line", lambda: "can't open file" in box.journal(LATE))
    wait("the second failure", lambda: restarts(box, LATE) >= 1)
    failed_at = time.monotonic()
    finding = doctor(box)[LATE]
    assert time.monotonic() - failed_at < LATE_DELAY  # read before the line was written
    assert box.journal(LATE).count("can't open file") == 1  # only the first run's line is in
    return finding


def test_a_run_whose_lines_are_not_in_yet_takes_the_run_with_evidence(
    late_run: dict[str, Any],
) -> None:
    assert late_run["cause"] == "script-missing", late_run["message"]
    assert "script /opt/quantum/late/main.py does not exist" in str(late_run["message"])
    detail = [str(line) for line in late_run["detail"]]
    summary = next(line for line in detail if line.startswith("failed 2 times since "))
    assert summary.endswith(
        "the last 1 always script-missing (1 more without lines of their own in the journal)"
    ), summary
    assert "different causes" not in summary


def test_a_fast_crash_loop_keeps_one_cause(box: Sandbox) -> None:
    wait("five restarts", lambda: restarts(box, FAST) >= 5)
    for _ in range(4):
        finding = doctor(box)[FAST]
        assert finding["cause"] == "script-missing", finding["message"]
        assert "different causes" not in json.dumps(finding["detail"])


def test_errno_13_under_protect_home_is_sandbox_denied(box: Sandbox) -> None:
    journal = box.journal("quantum-hidden.service")
    assert f"can't open file '{ROOT}/dyn/main.py': [Errno 13] Permission denied" in journal
    finding = doctor(box)["quantum-hidden.service"]
    assert finding["cause"] == "sandbox-denied"
    assert f"ProtectHome=yes denies {ROOT}/dyn/main.py ([Errno 13])" in str(finding["message"])


def test_a_refused_connection_to_the_fleets_redis_is_dependency_down(box: Sandbox) -> None:
    assert "ConnectionRefusedError: [Errno 111]" in box.journal("quantum-redis-feed.service")
    found = doctor(box)
    finding = found["quantum-redis-feed.service"]
    assert finding["cause"] == "dependency-down", finding["message"]
    assert "the fleet's Redis at 127.0.0.1:6379 is down (QT400)" in str(finding["message"])
    # another port is not the fleet's Redis: its own exception stays the cause
    assert found["quantum-other-port.service"]["cause"] == "python-exception"


def test_a_package_one_folder_below_the_root_gets_the_pythonpath_drop_in(box: Sandbox) -> None:
    for unit in ("quantum-pp3.service", "quantum-ambig.service"):
        assert box.wait_for(unit, ["failed"]) == "failed"
    imports = box.qtctl("--format", "json", "doctor", "--select", "QT201")
    messages = {f["subject"]: str(f["message"]) for f in json.loads(imports.stdout)["findings"]}
    assert "not in the code roots" not in messages["quantum-pp3.service"]
    assert f"{ROOT}/libs3" in messages["quantum-pp3.service"]
    res = box.qtctl("--format", "json", "fix", "--select", "QT201")
    assert res.returncode in (0, 1), res.stderr
    repairs = {r["subject"]: r for r in json.loads(res.stdout)["repairs"]}
    pp3 = repairs["quantum-pp3.service"]
    assert not pp3["held"], pp3["held"]
    actions = [str(a) for a in pp3["actions"]]
    assert f"PYTHONPATH={ROOT}/libs:{ROOT}/libs3" in actions[0]
    held = str(repairs["quantum-ambig.service"]["held"])
    assert held == (
        f"2 folders in the code roots provide common.settings ({ROOT}/svc_a, {ROOT}/svc_b): "
        "choose one"
    )


def test_the_hint_of_sandbox_denied_under_protect_home_works(box: Sandbox) -> None:
    """The message's own remedy, applied as a drop-in, lets the hidden unit start."""
    name = "quantum-hidden.service"
    message = str(doctor(box)[name]["message"])
    remedy = f"ProtectHome=tmpfs and BindReadOnlyPaths={ROOT}/dyn/main.py"
    assert f"bind it back in with {remedy} (BindPaths= to write it), or relax" in message
    drop_in = remedy.replace(" and ", "\n")
    box.write(f"/etc/systemd/system/{name}.d/50-test.conf", f"[Service]\n{drop_in}\n")
    try:
        box.systemctl("daemon-reload", check=True)
        box.systemctl("restart", name)
        time.sleep(1.5)
        assert box.systemctl("is-active", name).stdout.strip() == "active", box.journal(name)
    finally:
        box.run("rm", "-rf", f"/etc/systemd/system/{name}.d")
        box.systemctl("daemon-reload")
        box.systemctl("stop", name)
