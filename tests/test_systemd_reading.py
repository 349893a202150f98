"""What qtctl reads from unit and env files is what systemd reads, at the product's boundary:
template instances, specifiers, env files systemd refuses, lines systemd ignores."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable

import pytest

from qtctl.sandbox import BoxFile, Sandbox, SandboxSpec

pytestmark = pytest.mark.sandbox
Boot = Callable[[SandboxSpec], Sandbox]
ETC = "/etc/systemd/system"
SLEEP = "import time\nwhile True:\n    time.sleep(3600)\n"
EXECUTION = """\
[Unit]
Description=quantum execution for %i

[Service]
WorkingDirectory=/home/qt/%i
Environment=PYTHONPATH=/home/qt/%i
ExecStart=/usr/bin/python3 %h/exec/%i/main.py
Restart=on-failure
MemoryMax=256M
CPUQuota=50%
"""
FEED = (
    "[Service]\nExecStart=/opt/feeds/%i/run.sh\nUser=daemon\nRestart=on-failure\n"
    "MemoryMax=64M\nCPUQuota=10%\n"
)
INSTANCES = ("quantum-execution@btc.service", "quantum-execution@eth.service")
FEEDS = ("quantum-feed@good.service", "quantum-feed@bad.service")


def doctor(box: Sandbox, select: str) -> dict[tuple[str, str], dict[str, object]]:
    res = box.qtctl("--format", "json", "doctor", "--select", select)
    assert res.returncode in (0, 1), res.stderr
    return {(f["code"], f["subject"]): f for f in json.loads(res.stdout)["findings"]}


def template_fleet() -> SandboxSpec:
    """Two templates, an instance of each that works and one that is broken."""
    files: dict[str, BoxFile | str | bytes] = {
        "/root/exec/btc/main.py": f"import engine\n{SLEEP}",
        "/root/exec/eth/main.py": f"import engine\n{SLEEP}",
        "/home/qt/btc/engine.py": "RUNNING = True\n",
        "/home/qt/eth/README": "engine.py was never deployed here\n",
        "/opt/feeds/good/run.sh": BoxFile("#!/bin/sh\nexec sleep 3600\n", 0o755),
        "/opt/feeds/bad/run.sh": BoxFile("#!/bin/sh\nexec sleep 3600\n", 0o644),
    }
    links = {
        f"{ETC}/multi-user.target.wants/{n}": f"{ETC}/quantum-execution@.service" for n in INSTANCES
    }
    links |= {f"{ETC}/multi-user.target.wants/{n}": f"{ETC}/quantum-feed@.service" for n in FEEDS}
    units = {"quantum-execution@.service": EXECUTION, "quantum-feed@.service": FEED}
    return SandboxSpec(units=units, files=files, symlinks=links, wants=[*INSTANCES, *FEEDS])


def test_template_instances_are_checked_with_their_expanded_paths(sandbox: Boot) -> None:
    box = sandbox(template_fleet())
    box.wait_for("quantum-execution@eth.service", ["failed", "activating"])
    shown = box.systemctl("show", "-P", "WorkingDirectory", INSTANCES[0]).stdout.strip()
    assert shown == "/home/qt/btc"  # systemd expands %i per instance; %h is the manager's /root
    found = doctor(box, "QT201,QT303")
    assert set(found) == {
        ("QT201", "quantum-execution@eth.service"),
        ("QT303", "quantum-feed@bad.service"),
    }
    assert "import engine will fail" in str(found[("QT201", "quantum-execution@eth.service")])
    assert "/opt/feeds/bad/run.sh" in str(found[("QT303", "quantum-feed@bad.service")]["message"])
    lint = doctor(box, "QT104")  # the code of %h (/root) runs as root: said once, on the template
    assert {s: f["cause"] for (_, s), f in lint.items()} == {
        "quantum-execution@.service": "python-as-root"
    }


ENV_UNITS = {
    "quantum-env-nul.service": "EnvironmentFile=/etc/quantum/nul.env",
    "quantum-env-latin1.service": "EnvironmentFile=/etc/quantum/latin1.env",
    "quantum-env-optional.service": "EnvironmentFile=-/etc/quantum/nul2.env",
    "quantum-env-ok.service": "EnvironmentFile=/etc/quantum/ok.env",
}


def env_fleet() -> SandboxSpec:
    units = {
        name: f"[Service]\n{line}\nExecStart=/bin/sleep 3600\nUser=daemon\n"
        "MemoryMax=64M\nCPUQuota=10%\n"
        for name, line in ENV_UNITS.items()
    }
    files: dict[str, BoxFile | str | bytes] = {
        "/etc/quantum/nul.env": BoxFile(b"API_URL=https://x\n\0MODE=live\n", 0o600),
        "/etc/quantum/nul2.env": BoxFile(b"A=1\0\n", 0o600),
        "/etc/quantum/latin1.env": BoxFile(b"CITY=K\xf6ln\n", 0o600),
        "/etc/quantum/ok.env": BoxFile(b"MODE=live\n", 0o600),
    }
    return SandboxSpec(units=units, files=files, wants=sorted(units))


def test_env_files_systemd_refuses_are_reported_and_linked(sandbox: Boot) -> None:
    box = sandbox(env_fleet())
    for name in ("quantum-env-nul.service", "quantum-env-latin1.service"):
        assert box.wait_for(name, ["failed"]) == "failed"
        assert box.systemctl("show", "-P", "Result", name).stdout.strip() == "resources"
    assert box.wait_for("quantum-env-optional.service", ["active"]) == "active"
    journal = box.journal("quantum-env-nul.service")
    assert "Failed to load environment files: Bad message" in journal
    assert "Invalid argument" in box.journal("quantum-env-latin1.service")
    found = doctor(box, "QT101,QT703")
    nul = found[("QT703", "quantum-env-nul.service")]
    assert (nul["cause"], nul["severity"]) == ("rejected-by-systemd", "error")
    assert "a NUL byte on line 2" in str(nul["message"])
    assert "Failed to load environment files: Bad message" in str(nul["detail"])
    assert "QT101 quantum-env-nul.service" in nul["related"]  # type: ignore[operator]
    assert found[("QT101", "quantum-env-nul.service")]["cause"] == "resources"
    latin1 = found[("QT703", "quantum-env-latin1.service")]
    assert "invalid UTF-8 in the value of CITY" in str(latin1["message"])
    assert "Invalid argument" in str(latin1["detail"])
    optional = found[("QT703", "quantum-env-optional.service")]
    assert (optional["cause"], optional["severity"]) == ("rejected-by-systemd", "warning")
    assert not [key for key in found if key[1] == "quantum-env-ok.service"]


IGNORED = (
    b"[Unit]\nDescription=form\x0cfeed and \x1e record separator stay on one line\n"
    b"[Service]\n=orphan value\nExecStart=/bin/true ; /bin/true\nType=oneshot\n"
    b"StartLimitBurst=3\nStartLimitIntervalSec=5\nRemainAfterExit=yes\n"
)


def test_lines_systemd_ignores_are_flagged_at_its_line(sandbox: Boot) -> None:
    name = "quantum-lines.service"
    box = sandbox(SandboxSpec(files={f"{ETC}/{name}": BoxFile(IGNORED)}))
    box.systemctl("start", name, check=True)  # loaded now, with journald there to hear it
    commands = box.systemctl("show", "-P", "ExecStart", name).stdout
    assert commands.count("path=/bin/true") == 2  # `;` splits the line into two commands
    assert box.systemctl("show", "-P", "StartLimitBurst", name).stdout.strip() == "3"
    box.run("journalctl", "--sync")
    said = box.run("journalctl", "-o", "cat", "--no-pager", "_PID=1").stdout
    assert f"{ETC}/{name}:4: Missing key name before '=', ignoring line." in said
    assert f"{ETC}/{name}:8: Unknown key 'StartLimitIntervalSec' in section [Service]" in said
    finding = doctor(box, "QT104")[("QT104", name)]
    detail = "\n".join(finding["detail"])  # type: ignore[arg-type]
    assert f"{ETC}/{name}:4: '=orphan value' has no key name: systemd ignores it" in detail
    assert f"{ETC}/{name}:8: StartLimitIntervalSec= belongs in [Unit]" in detail
    assert "StartLimitBurst" not in detail  # systemd 252 accepts it in [Service]


REFUSED = {
    "quantum-two-starts.service": "[Service]\nExecStart=/bin/sleep 1\nExecStart=/bin/sleep 2\n",
    "quantum-bad-specifier.service": "[Service]\nType=oneshot\nExecStart=/bin/echo %z\n",
}


def test_units_systemd_refuses_say_why_live_and_static(sandbox: Boot) -> None:
    box = sandbox(SandboxSpec(units=REFUSED, wants=sorted(REFUSED)))
    for name in REFUSED:
        state = box.systemctl("show", "-P", "LoadState", name).stdout.strip()
        assert state == "bad-setting", name
    found = doctor(box, "QT104")
    two = found[("QT104", "quantum-two-starts.service")]
    assert two["cause"].startswith("load-error")  # type: ignore[union-attr]
    assert "refused to load it (bad-setting)" in str(two["message"])
    assert "more than one ExecStart= setting" in str(two["message"])  # the static reason
    spec = found[("QT104", "quantum-bad-specifier.service")]
    assert f"{ETC}/quantum-bad-specifier.service:3: " in str(spec["detail"])
    assert "unknown specifier %z" in str(spec["message"])


ALL_SPECIFIERS = "%n %N %p %P %i %I %j %J %f %h %u %U %g %G %d %t %S %C %L %E %T %V %H %l %b %m %o"
ALL_SPECIFIERS += " %v %a %w %W %q %s %y %Y %% 100%"
QTCTL_SIDE = """
import json, sys
from qtctl.diagnosis.specifiers import Specifiers
from qtctl.diagnosis.unit_file import parse
from qtctl.diagnosis.unit_load import LoadedUnit
name, fragment = sys.argv[1], sys.argv[2]
unit = LoadedUnit(name, [parse(fragment)], Specifiers(name, fragment))
print(json.dumps([[c.path, list(c.argv)] for c in unit.commands()]))
"""


def test_specifiers_expand_as_systemd_expands_them(sandbox: Boot) -> None:
    from pystemd.dbuslib import DBusAddress
    from pystemd.systemd1 import Unit

    from tests.support.corpus import REPO

    template = "[Service]\nType=oneshot\nUser=daemon\n"
    template += f"ExecStart=/bin/echo {ALL_SPECIFIERS}\nExecStart=/bin/echo %i ; /bin/echo %I\n"
    box = sandbox(SandboxSpec(units={"quantum-spec-x@.service": template}))
    name = "quantum-spec-x@a\\x20b-c.service"
    with DBusAddress(box.bus_address.encode()) as bus:
        unit = Unit(name.encode(), bus=bus)
        unit.load()
        systemd = [
            [p.decode(), [a.decode() for a in argv]] for p, argv, *_ in unit.Service.ExecStart
        ]
    res = box.run(
        sys.executable,
        "-c",
        QTCTL_SIDE,
        name,
        f"{ETC}/quantum-spec-x@.service",
        env={"PYTHONPATH": str(REPO)},
    )
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout) == systemd
    assert systemd[0][1][10:13] == ["/root", "root", "0"]  # %h %u %U: the manager's, not User='s
    assert [c[1][1:] for c in systemd[1:]] == [["a\\x20b-c"], ["a b/c"]]  # `;`: two commands


def test_the_key_table_is_the_installed_systemds(sandbox: Boot) -> None:
    from qtctl.diagnosis.unit_keys import KNOWN

    box = sandbox(SandboxSpec(dbus=False))
    dump = box.run("/lib/systemd/systemd", "--dump-configuration-items").stdout
    installed: dict[str, set[str]] = {}
    section = ""
    for line in dump.splitlines():
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
            installed[section] = set()
        elif "=" in line and section:
            installed[section].add(line.partition("=")[0])
    assert {s: set(keys) for s, keys in KNOWN.items()} == installed
