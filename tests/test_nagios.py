"""`qtctl report --format nagios` against the monitoring-plugins conventions, side by side with
Debian's real plugins: the range grammar as `check_cluster` applies it (a plugin whose measured
number we choose), the status words and exit codes as `check_dummy` prints them, perfdata and
long output as the guidelines lay them out. The fleet is a real redis-server with streams of
10, 20 and 30 entries: `streams.length_error` decides how many are errors (QT401)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from qtctl.report.nagios import Range
from tests.conftest import REPO, run_cli
from tests.support.redis_server import RedisServer, free_port, start_redis

PLUGINS = Path("/usr/lib/nagios/plugins")
LENGTHS = (10, 20, 30)
ERRORS_AT = {0: 35, 1: 25, 2: 15, 3: 5}  # length_error -> that many streams at or above it
RANGES = ("0", "1", "2", "~:1", "1:", "2:3", "@1:2", "@0", "1:2", "@~:0", "~:", "0.5:2.5")
PERF = re.compile(r"'[a-z_]+'=[0-9.]+s?;[^; ]*;[^; ]*;0")


def plugin(*args: str) -> subprocess.CompletedProcess[str]:
    """A real monitoring plugin from Debian's package (scripts/setup.sh installs it)."""
    assert (PLUGINS / args[0]).exists(), "run scripts/setup.sh: monitoring-plugins-basic missing"
    return subprocess.run([str(PLUGINS / args[0]), *args[1:]], capture_output=True, text=True)


def cluster(value: int, *, warning: str = "~:", critical: str = "~:") -> int:
    """check_cluster's exit code when `value` services are not OK: the plugins' own range code."""
    states = ",".join(["1"] * value) or "0"
    args = ("check_cluster", "--service", "-l", "q", "-w", warning, "-c", critical, "-d", states)
    return plugin(*args).returncode


@pytest.fixture(scope="module")
def fleet() -> Iterator[RedisServer]:
    """One redis-server for the module: three streams, never changed by a test for long."""
    server = start_redis()
    client = redis.Redis.from_url(server.url)
    for n, length in enumerate(LENGTHS):
        for i in range(length):
            client.xadd(f"quantum:stream:s{n}", {"i": str(i)})
    yield server
    server.stop()


def nagios(server: RedisServer, config: Path, errors: int, *args: str) -> tuple[int, list[str]]:
    config.write_text(
        f"[redis]\nurl = '{server.url}'\n[doctor]\nselect = ['QT401']\n"
        f"[streams]\nlength_warn = {ERRORS_AT[errors]}\nlength_error = {ERRORS_AT[errors]}\n"
    )
    res = run_cli("report", "--format", "nagios", *args)
    assert res.stderr == "", res.stderr
    return res.returncode, res.stdout.splitlines()


@pytest.mark.parametrize("spec", RANGES)
def test_range_grammar_is_the_plugins_own(spec: str) -> None:
    """Every range of the table, for values 0..3 and halves: qtctl alerts exactly where
    check_cluster does (its thresholds come from the plugins' shared range parser)."""
    parsed = Range.parse(spec, "--critical")
    for value in range(4):
        assert parsed.alerts(value) == (cluster(value, critical=spec) == 2), (spec, value)


@pytest.mark.parametrize("errors", sorted(ERRORS_AT))
def test_critical_ranges_through_the_cli_match_check_cluster(
    fleet: RedisServer, isolated_env: Path, errors: int
) -> None:
    """The real CLI on a real Redis with 0..3 error findings, under each range: CRITICAL (2)
    exactly when check_cluster, given the same number, says CRITICAL."""
    for spec in ("0", "2", "@1:2"):
        code, lines = nagios(fleet, isolated_env, errors, "--critical", spec, "--warning", "~:")
        assert (code == 2) == (cluster(errors, critical=spec) == 2), (errors, spec, lines[0])
        assert f"'errors'={errors};;{spec};0" in lines[0]


def test_warning_range_and_the_default_critical_at_one_error(
    fleet: RedisServer, isolated_env: Path
) -> None:
    code, lines = nagios(fleet, isolated_env, 0)
    assert code == 0 and lines[0].startswith("QTCTL OK - no problems")
    config = isolated_env
    config.write_text(
        f"[redis]\nurl = '{fleet.url}'\n[doctor]\nselect = ['QT401']\n"
        "[streams]\nlength_warn = 15\nlength_error = 25\n"  # 2 warnings (20, 30->error), 1 error
    )
    assert run_cli("report", "--format", "nagios").returncode == 2  # one error is CRITICAL
    for spec in ("0", "1", "@1"):
        res = run_cli("report", "--format", "nagios", "--critical", "1", "--warning", spec)
        want = cluster(1, warning=spec)  # one warning finding (the 20-entry stream)
        assert res.returncode == want, (spec, res.stdout)
        assert "'warnings'=1;" + spec + ";;0" in res.stdout


def test_status_words_and_exit_codes_are_check_dummys(
    fleet: RedisServer, isolated_env: Path
) -> None:
    seen = {}
    for errors, args in ((0, ()), (3, ("--critical", "5", "--warning", "@0")), (3, ())):
        code, lines = nagios(fleet, isolated_env, errors, *args)
        seen[code] = lines[0].split()[1]
    isolated_env.write_text(
        f"[redis]\nurl = 'redis://127.0.0.1:{free_port()}/0'\n"
        "[doctor]\nselect = ['QT4']\nignore = ['QT400']\n"
    )
    res = run_cli("report", "--format", "nagios")
    seen[res.returncode] = res.stdout.split()[1]
    assert sorted(seen) == [0, 1, 2, 3]
    for code, word in seen.items():
        assert plugin("check_dummy", str(code), "x").stdout.startswith(f"{word}: "), seen


def test_long_output_one_finding_per_line_and_perfdata_after_the_bar(
    fleet: RedisServer, isolated_env: Path
) -> None:
    client = redis.Redis.from_url(fleet.url)
    hostile = "quantum:stream:evil|name\nQTCTL OK - fake"
    for i in range(40):
        client.xadd(hostile, {"i": str(i)})
    try:
        code, lines = nagios(fleet, isolated_env, 3)
    finally:
        client.delete(hostile)
    assert code == 2
    status, perf = lines[0].split(" | ")
    assert status.startswith("QTCTL CRITICAL - 4 error(s), 0 warning(s): QT401 ")
    assert status.endswith("(+1 more)")
    assert all(PERF.fullmatch(item) for item in perf.split(" ")), perf
    assert perf.startswith("'errors'=4;;0;0 'warnings'=0;0;;0 'info'=0;;;0 'checks_skipped'=0;;;0")
    assert len(lines) == 5  # the status line, then one line per finding
    assert all(line.startswith("error QT401 quantum:stream:") for line in lines[1:])
    assert not any("|" in line for line in lines[1:])
    assert not any(line.startswith("QTCTL") for line in lines[1:])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--critical", "x"), "--critical 'x' is not a threshold range"),
        (("--warning", "5:1"), "--warning '5:1': the start is above the end"),
        (("--warning", "1:~"), "`~` stands for minus infinity"),
    ],
)
def test_a_check_that_cannot_run_is_unknown_on_stdout(
    isolated_env: Path, args: tuple[str, ...], message: str
) -> None:
    res = run_cli("report", "--format", "nagios", *args)
    assert res.returncode == 3 and res.stderr == ""
    assert res.stdout.startswith("QTCTL UNKNOWN - ") and message in res.stdout
    assert run_cli("report", "--format", "json", *args).returncode == 2  # a usage error there


def test_unknown_when_every_check_was_skipped(isolated_env: Path) -> None:
    isolated_env.write_text(
        f"[redis]\nurl = 'redis://127.0.0.1:{free_port()}/0'\n"
        "[doctor]\nselect = ['QT4']\nignore = ['QT400']\n"
    )
    res = run_cli("report", "--format", "nagios")
    assert res.returncode == 3, res.stdout
    assert res.stdout.startswith(
        "QTCTL UNKNOWN - not checked: redis_server, redis_streams (cannot connect to redis://"
    )
    assert "'checks_skipped'=2;;;0" in res.stdout.splitlines()[0]
    assert res.stdout.splitlines()[1].startswith("not checked: redis_server (cannot connect")
    assert run_cli("report", "--format", "nagios", "--exit-zero").returncode == 0


NAGIOS = Path("/usr/sbin/nagios4")
NAGIOS_CFG = """\
log_file={d}/nagios.log
cfg_file={d}/objects.cfg
status_file={d}/status.dat
status_update_interval=1
lock_file={d}/nagios.lock
temp_file={d}/nagios.tmp
temp_path={d}
check_result_path={d}/results
query_socket={d}/nagios.qh
command_file={d}/nagios.cmd
state_retention_file={d}/retention.dat
object_cache_file={d}/objects.cache
precached_object_file={d}/objects.precache
retain_state_information=0
check_external_commands=0
nagios_user=root
nagios_group=root
interval_length=1
max_service_check_spread=1
service_inter_check_delay_method=n
execute_host_checks=0
enable_notifications=0
"""
OBJECTS = """\
define timeperiod {{
    timeperiod_name always
    alias always
{days}
}}
define command {{
    command_name check_qtctl
    command_line {qtctl} report --format nagios --config {config} --warning $ARG1$ --critical $ARG2$
}}
define command {{
    command_name check_nothing
    command_line /bin/true
}}
define contact {{
    contact_name nobody
    host_notifications_enabled 0
    service_notifications_enabled 0
    host_notification_period always
    service_notification_period always
    host_notification_options n
    service_notification_options n
    host_notification_commands check_nothing
    service_notification_commands check_nothing
}}
define host {{
    host_name trading-1
    address 127.0.0.1
    check_command check_nothing
    max_check_attempts 1
    check_period always
    contacts nobody
    notification_period always
    active_checks_enabled 0
}}
define service {{
    host_name trading-1
    service_description qtctl fleet health
    check_command check_qtctl!0!1
    max_check_attempts 1
    check_interval 3600
    check_period always
    contacts nobody
    notification_period always
}}
"""
DAYS = ("sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday")


def service_status(folder: Path, timeout: float = 60.0) -> dict[str, str]:
    """The service block of Nagios' status.dat once it has been checked."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = folder / "status.dat"
        text = status.read_text(errors="replace") if status.exists() else ""
        block = text.partition("servicestatus {")[2].partition("\n\t}")[0]
        fields = dict(line.strip().split("=", 1) for line in block.splitlines() if "=" in line)
        if fields.get("has_been_checked") == "1":
            return fields
        time.sleep(0.2)
    raise AssertionError(f"Nagios never checked the service: {(folder / 'nagios.log').read_text()}")


def test_a_real_nagios_reads_status_long_output_and_perfdata(
    fleet: RedisServer, tmp_path: Path
) -> None:
    """Nagios 4 (Debian's nagios4-core, in the foreground with a throwaway config, as PID 1 of
    its own pid namespace so its workers die with it) runs the check as a service would."""
    config = tmp_path / "qtctl.toml"
    config.write_text(
        f"[redis]\nurl = '{fleet.url}'\n[doctor]\nselect = ['QT401']\n"
        "[streams]\nlength_warn = 15\nlength_error = 25\n"  # 1 error (30), 1 warning (20)
    )
    qtctl = f"{sys.executable} -m qtctl"
    (tmp_path / "results").mkdir()
    (tmp_path / "nagios.cfg").write_text(NAGIOS_CFG.format(d=tmp_path))
    days = "\n".join(f"    {day} 00:00-24:00" for day in DAYS)
    objects = OBJECTS.format(days=days, qtctl=qtctl, config=config)
    (tmp_path / "objects.cfg").write_text(objects)
    verify = subprocess.run([str(NAGIOS), "-v", str(tmp_path / "nagios.cfg")], capture_output=True)
    assert verify.returncode == 0, verify.stdout.decode()[-2000:]
    runner = subprocess.Popen(
        ["unshare", "--pid", "--fork", str(NAGIOS), str(tmp_path / "nagios.cfg")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        got = service_status(tmp_path)
    finally:
        children = Path(f"/proc/{runner.pid}/task/{runner.pid}/children")
        for pid in children.read_text().split() if children.exists() else ():
            os.kill(int(pid), signal.SIGTERM)  # Nagios, PID 1 of its namespace
        runner.wait(timeout=30)
    direct = subprocess.run(
        [sys.executable, "-m", "qtctl", "report", "--format", "nagios", "--config", str(config),
         "--warning", "0", "--critical", "1"],
        capture_output=True, text=True, cwd=REPO,
    )  # fmt: skip
    status, perf = direct.stdout.splitlines()[0].split(" | ")
    assert direct.returncode == 1  # the error is tolerated (--critical 1), the warning is not
    assert got["current_state"] == "1"
    assert status.startswith("QTCTL WARNING - 1 error(s), ")
    # Nagios shows `;` as `:` in the first line (`;` separates its log and command fields)
    assert got["plugin_output"] == status.replace(";", ":")
    assert re.sub(r"'duration'=\S+", "", got["performance_data"]) == re.sub(
        r"'duration'=\S+", "", perf
    )
    assert got["long_plugin_output"].split("\\n") == direct.stdout.splitlines()[1:]
