"""`qtctl install` in a real systemd: hardened units that verify clean, score at most 2.0 on
`systemd-analyze security`, start READY, stop on SIGTERM, come back after kill -9 and after a
hang caught by the watchdog; and the staging mode that never touches systemd."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from qtctl.sandbox import Sandbox, SandboxSpec
from tests.conftest import run_cli

BRIDGE = "qtctl-bridge.service"
KERNEL = "qtctl-risk-kernel.service"
AGENT = "qtctl-rl-agent.service"
REDIS = (
    "[Service]\nExecStart=/usr/bin/redis-server --port 6379 --bind 127.0.0.1 --save '' "
    "--appendonly no\n"
)
CONFIG = (
    "[bridge]\nstart_id = '0'\nallow_no_readers = ['trade.execution.result']\n"
    "[rl]\nstats_every_sec = 1\ncheckpoint_every_sec = 1\nblock_ms = 100\n"
)
SRC, DST = "quantum:stream:execution.result", "quantum:stream:trade.execution.result"
INSTALL = (
    "install",
    "--all",
    "--report-timer",
    "--daemon-config",
    "/etc/qtctl/qtctl.toml",
    "--watchdog-sec",
    "3",
)


def show(box: Sandbox, unit: str, *props: str) -> dict[str, str]:
    out = box.systemctl("show", "-p", ",".join(props), unit).stdout
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def wait_for(box: Sandbox, unit: str, timeout: float = 20.0, **want: str) -> dict[str, str]:
    deadline = time.monotonic() + timeout
    while True:
        state = show(box, unit, *want)
        if all(state.get(k) == v for k, v in want.items()) or time.monotonic() > deadline:
            return state
        time.sleep(0.1)


@pytest.fixture(scope="module")
def box() -> Iterator[Sandbox]:
    spec = SandboxSpec(
        units={"redis-server.service": REDIS},
        files={"/etc/qtctl/qtctl.toml": CONFIG},
        wants=["redis-server.service"],
    )
    with Sandbox(spec) as sandbox:
        # The interpreter behind the venv lives under /root (pyenv), which is 0700 on the host;
        # the units run as their dedicated user, so open it for traversal in the box's overlay only.
        sandbox.run("chmod", "o+x", "/root", check=True)
        res = sandbox.qtctl(*INSTALL)
        assert res.returncode == 0, res.stderr
        yield sandbox


pytestmark = pytest.mark.sandbox


def test_units_verify_clean_and_score_at_most_2(box: Sandbox) -> None:
    units = (BRIDGE, KERNEL, AGENT, "qtctl-report.service")
    paths = [f"/etc/systemd/system/{u}" for u in units]
    paths.append("/etc/systemd/system/qtctl-report.timer")
    verify = box.run("systemd-analyze", "verify", *paths)
    assert verify.returncode == 0 and verify.stderr.strip() == "", verify.stderr
    for unit in units:
        out = box.run("systemd-analyze", "security", "--no-pager", unit).stdout
        [score] = re.findall(r"Overall exposure level for \S+: ([0-9.]+)", out)
        assert float(score) <= 2.0, out


def test_bridge_starts_ready_and_bridges_under_its_hardening(box: Sandbox) -> None:
    state = wait_for(box, BRIDGE, ActiveState="active", SubState="running")
    assert state["ActiveState"] == "active", box.journal(BRIDGE)
    for i in range(5):
        box.run("redis-cli", "xadd", SRC, "*", "i", str(i), check=True)
    deadline = time.monotonic() + 10
    while box.run("redis-cli", "xlen", DST).stdout.strip() != "5":
        assert time.monotonic() < deadline, box.journal(BRIDGE)
        time.sleep(0.1)
    deadline = time.monotonic() + 10
    while not show(box, BRIDGE, "StatusText")["StatusText"].startswith(
        "execution.result: bridged 5, lag 0 (0.0 s)"
    ):
        assert time.monotonic() < deadline, show(box, BRIDGE, "StatusText")
        time.sleep(0.1)
    user = show(box, BRIDGE, "User", "NoNewPrivileges")
    assert user == {"User": "qtctl", "NoNewPrivileges": "yes"}
    assert box.run("id", "-u", "qtctl").stdout.strip() != "0"


def test_risk_kernel_runs_ready_under_its_hardening_and_says_it_has_no_positions(
    box: Sandbox,
) -> None:
    state = wait_for(box, KERNEL, ActiveState="active", SubState="running")
    assert state["ActiveState"] == "active", box.journal(KERNEL)
    status = wait_for(box, KERNEL, StatusText="no open positions: nothing to propose")
    assert status["StatusText"] == "no open positions: nothing to propose"


def test_rl_agent_learns_with_torch_under_its_hardening_and_limits(box: Sandbox) -> None:
    state = wait_for(box, AGENT, ActiveState="active", SubState="running", timeout=60)
    assert state["ActiveState"] == "active", box.journal(AGENT)
    for i in range(20):
        entry, exit_ = 100.0, 101.0 + i % 3
        box.run(
            "redis-cli",
            "xadd",
            "quantum:stream:trade.closed",
            "*",
            "symbol",
            "BTCUSDT",
            "side",
            "LONG",
            "entry_price",
            str(entry),
            "exit_price",
            str(exit_),
            "pnl_percent",
            str(exit_ - entry),
            "source",
            "executor",
            "order_id",
            f"o{i}",
            check=True,
        )
    deadline = time.monotonic() + 30
    while (
        box.run("redis-cli", "hget", "quantum:rl:agent:stats", "experiences").stdout.strip() != "20"
    ):
        assert time.monotonic() < deadline, box.journal(AGENT)[-3000:]
        time.sleep(0.2)
    limits = show(box, AGENT, "MemoryMax", "CPUQuotaPerSecUSec", "MemoryCurrent")
    assert limits["MemoryMax"] == str(512 * 2**20) and limits["CPUQuotaPerSecUSec"] == "500ms"
    assert int(limits["MemoryCurrent"]) < 512 * 2**20
    assert box.run("ls", "/var/lib/qtctl-rl-agent").stdout.strip().startswith("ckpt-")


def test_install_again_changes_nothing(box: Sandbox) -> None:
    res = box.qtctl(*INSTALL)
    assert res.returncode == 0, res.stderr
    assert res.stdout.count(": unchanged") == 5
    assert "daemon-reload" not in res.stdout and "restart" not in res.stdout


def test_killed_daemon_is_restarted(box: Sandbox) -> None:
    before = wait_for(box, BRIDGE, ActiveState="active", SubState="running")
    pid, restarts = before.get("MainPID", "0"), int(show(box, BRIDGE, "NRestarts")["NRestarts"])
    pid = show(box, BRIDGE, "MainPID")["MainPID"]
    assert pid not in ("", "0")
    box.run("kill", "-9", pid, check=True)
    time.sleep(0.5)
    after = wait_for(box, BRIDGE, ActiveState="active", SubState="running")
    now = show(box, BRIDGE, "MainPID", "NRestarts")
    assert after["ActiveState"] == "active" and now["MainPID"] != pid
    assert int(now["NRestarts"]) == restarts + 1


def test_hung_daemon_is_killed_by_the_watchdog_and_restarted(box: Sandbox) -> None:
    wait_for(box, BRIDGE, ActiveState="active", SubState="running")
    state = show(box, BRIDGE, "MainPID", "NRestarts", "WatchdogUSec")
    assert state["WatchdogUSec"] == "3s"
    pid, restarts = state["MainPID"], int(state["NRestarts"])
    assert pid not in ("", "0")
    box.run("kill", "-STOP", pid, check=True)
    deadline = time.monotonic() + 20
    while int(show(box, BRIDGE, "NRestarts")["NRestarts"]) == restarts:
        assert time.monotonic() < deadline, box.journal(BRIDGE)[-2000:]
        time.sleep(0.2)
    assert "Watchdog timeout" in box.run("journalctl", "-u", BRIDGE, "--no-pager").stdout
    assert wait_for(box, BRIDGE, ActiveState="active")["ActiveState"] == "active"


def test_sigterm_stops_cleanly(box: Sandbox) -> None:
    wait_for(box, BRIDGE, ActiveState="active", SubState="running")
    res = box.systemctl("stop", BRIDGE)
    assert res.returncode == 0
    state = show(box, BRIDGE, "ActiveState", "Result", "ExecMainStatus")
    assert state == {"ActiveState": "inactive", "Result": "success", "ExecMainStatus": "0"}
    assert "bridge stopping" in box.journal(BRIDGE)
    box.systemctl("start", BRIDGE, check=True)


def test_report_timer_writes_the_textfile_under_its_hardening(box: Sandbox) -> None:
    timer = show(box, "qtctl-report.timer", "ActiveState", "UnitFileState")
    assert timer == {"ActiveState": "active", "UnitFileState": "enabled"}
    res = box.systemctl("start", "qtctl-report.service")
    assert res.returncode == 0, box.journal("qtctl-report.service")
    text = box.run("cat", "/var/lib/qtctl-report/qtctl.prom").stdout
    assert f'qtctl_systemd_unit_state{{name="{BRIDGE}",state="active",type="notify"}} 1' in text
    assert f'qtctl_stream_length{{stream="{DST}"}} 5' in text


def test_uninstall_removes_everything(box: Sandbox) -> None:
    res = box.qtctl("uninstall", "--all", "--report-timer")
    assert res.returncode == 0, res.stderr
    for unit in (BRIDGE, KERNEL, AGENT, "qtctl-report.service", "qtctl-report.timer"):
        assert not box.host_path(f"/etc/systemd/system/{unit}").exists()
    assert show(box, BRIDGE, "LoadState")["LoadState"] == "not-found"
    assert box.qtctl("uninstall", "bridge").stdout.strip() == "nothing installed"


def test_staging_root_renders_without_systemd(tmp_path: Path) -> None:
    import sys

    res = run_cli("install", "--all", "--report-timer", "--root", str(tmp_path), "--every", "1h")
    assert res.returncode == 0, res.stderr
    folder = tmp_path / "etc/systemd/system"
    bridge = (folder / BRIDGE).read_text()
    assert f"ExecStart={sys.prefix}/bin/qtctl run bridge\n" in bridge
    assert "User=qtctl\nGroup=qtctl\n" in bridge and not re.search(r"@[A-Z_]+@", bridge)
    assert "OnUnitActiveSec=1h\n" in (folder / "qtctl-report.timer").read_text()
    again = run_cli("install", "--all", "--report-timer", "--root", str(tmp_path), "--every", "1h")
    assert again.stdout.count(": unchanged") == 5
    kernel = (folder / "qtctl-risk-kernel.service").read_text()
    assert f"ExecStart={sys.prefix}/bin/qtctl run risk-kernel\n" in kernel
    changed = run_cli("install", "bridge", "--root", str(tmp_path), "--user", "qtbridge")
    assert "qtctl-bridge.service: changed" in changed.stdout
    assert "-User=qtctl\n-Group=qtctl\n+User=qtbridge\n+Group=qtbridge" in changed.stdout
    bad = run_cli("install", "nope", "--root", str(tmp_path))
    assert (
        bad.returncode == 2 and "installable daemons: bridge, risk-kernel, rl-agent" in bad.stderr
    )
    agent = (folder / "qtctl-rl-agent.service").read_text()
    assert "MemoryMax=512M\n" in agent and "CPUQuota=50%\n" in agent
