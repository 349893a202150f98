"""`qtctl report` for cron and timers, on a real redis-server: every format, exit codes, atomic
output, Redis publishing, the lock, and the faults (unwritable path, full disk, Redis down).
Nagios is in test_nagios.py, the textfile through node_exporter in test_prometheus_tools.py."""

from __future__ import annotations

import fcntl
import json
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import redis

from tests.conftest import REPO, run_cli
from tests.support.redis_server import RedisServer, free_port

P = "quantum:stream:"
SAMPLE = re.compile(r'^qtctl_[a-z_]+(\{([a-z_]+="([^"\\]|\\.)*",?)*\})? -?[0-9.e+-]+$')


def seed(server: RedisServer, config: Path, extra: str = "") -> redis.Redis:
    client = redis.Redis.from_url(server.url, decode_responses=True)
    pipe = client.pipeline(transaction=False)
    for i in range(30):
        pipe.xadd(f"{P}model.retrain", {"i": str(i)})
    for i in range(5):
        pipe.xadd(f"{P}trade.closed", {"i": str(i)})
    pipe.execute()
    client.xgroup_create(f"{P}trade.closed", "quantum:group:rl", id="0")
    config.write_text(
        f"[redis]\nurl = '{server.url}'\n[doctor]\nselect = ['QT4']\n"
        f"[streams]\nexpected = ['trade.closed']\nlength_warn = 20\n{extra}"
    )
    return client


def test_prometheus_textfile_is_written_quietly_and_parses(
    redis_server: RedisServer, tmp_path: Path, isolated_env: Path
) -> None:
    seed(redis_server, isolated_env)
    out = tmp_path / "qtctl.prom"
    res = run_cli("report", "--format", "prometheus", "--output", str(out))
    assert (res.returncode, res.stdout, res.stderr) == (0, "", "")  # a warning, fail_on error
    text = out.read_text()
    samples = [line for line in text.splitlines() if not line.startswith("#")]
    assert all(SAMPLE.match(line) for line in samples), samples
    assert f'qtctl_stream_length{{stream="{P}model.retrain"}} 30' in samples
    assert f'qtctl_stream_group_lag{{stream="{P}trade.closed",group="quantum:group:rl"}} 5' in (
        samples
    )
    assert 'qtctl_findings{code="QT401",severity="warning"} 1' in samples
    assert "qtctl_health_status 1" in samples
    helps = [line.split()[2] for line in text.splitlines() if line.startswith("# HELP")]
    assert len(helps) == len(set(helps))  # each metric family once
    stamp = float(next(s for s in samples if s.startswith("qtctl_report_last_success")).split()[1])
    assert abs(stamp - time.time()) < 60
    assert not list(tmp_path.glob(".qtctl.prom.*.tmp"))


def test_markdown_reads_as_an_incident_summary(
    redis_server: RedisServer, isolated_env: Path
) -> None:
    seed(redis_server, isolated_env)
    res = run_cli("report", "--format", "markdown", "--exit-zero")
    assert res.returncode == 0
    lines = res.stdout.splitlines()
    assert re.fullmatch(r"# Fleet health on .+: \*\*WARNING\*\*", lines[0])
    body = res.stdout
    assert body.index("## Problems") < body.index("## Inventory")
    assert f"### 1. warning QT401: `{P}model.retrain`" in body
    assert "- fix: `qtctl fix --select QT401` (preview), then add `--apply`" in body
    assert "- fleet units: not read (systemd unreachable)" in body
    assert "- streams: 2, 35 entries; consumer groups: 1 (1 with lag)" in body


def test_redis_publish_keeps_the_latest_report_and_a_capped_summary_stream(
    redis_server: RedisServer, isolated_env: Path, tmp_path: Path
) -> None:
    client = seed(redis_server, isolated_env)
    for _ in range(2):
        res = run_cli("report", "--output", str(tmp_path / "r.json"), "--redis-publish")
        assert res.returncode == 0 and res.stderr == ""
    latest = client.hgetall("quantum:qtctl:health")
    assert latest["status"] == "warning" and latest["warnings"] == "1"
    assert json.loads(latest["report"]) == json.loads((tmp_path / "r.json").read_text())
    entries = client.xrange("quantum:stream:health")
    assert len(entries) == 2 and entries[-1][1]["status"] == "warning"


def test_redis_down_still_writes_a_critical_report(tmp_path: Path, isolated_env: Path) -> None:
    isolated_env.write_text(
        f"[redis]\nurl = 'redis://:hunter2@127.0.0.1:{free_port()}/0'\n[doctor]\nselect = ['QT4']\n"
    )
    out = tmp_path / "health.json"
    res = run_cli("report", "--output", str(out), "--redis-publish")
    assert res.returncode == 1
    assert res.stderr.startswith("qtctl: error: report not published to Redis: cannot connect")
    doc = json.loads(out.read_text())
    assert doc["status"] == "critical" and doc["findings"][0]["code"] == "QT400"
    assert "hunter2" not in out.read_text() + res.stderr


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("missing/health.json", "does not exist"),
        (".", "is a directory"),
    ],
)
def test_unwritable_output_is_a_clear_error(
    tmp_path: Path, isolated_env: Path, target: str, message: str
) -> None:
    res = run_cli("report", "--output", str(tmp_path / target))
    assert res.returncode == 3 and res.stdout == ""
    assert res.stderr.startswith("qtctl: error: ") and message in res.stderr


def test_disk_full_keeps_the_previous_report(tmp_path: Path, isolated_env: Path) -> None:
    """A 64 KiB tmpfs in a private mount namespace (the host's mounts are untouched)."""
    isolated_env.write_text(f"[redis]\nurl = 'redis://127.0.0.1:{free_port()}/0'\n")
    disk = tmp_path / "disk"
    disk.mkdir()
    script = f"""
set -e
mount -t tmpfs -o size=64k tmpfs {disk}
echo '{{"previous": true}}' > {disk}/health.json
dd if=/dev/zero of={disk}/filler bs=4k count=100 2>/dev/null || true
set +e
{sys.executable} -m qtctl report --format markdown --output {disk}/health.json
echo "rc=$?"
cat {disk}/health.json
ls -a {disk}
"""
    res = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c", script],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
    )
    assert "rc=3" in res.stdout, res.stdout + res.stderr
    assert "no space left on the device; the previous report is unchanged" in res.stderr
    assert '{"previous": true}' in res.stdout
    assert ".tmp" not in res.stdout  # the partial file was removed


def test_concurrent_runs_wait_for_the_lock_or_give_up_cleanly(
    tmp_path: Path, isolated_env: Path
) -> None:
    out = tmp_path / "health.json"
    isolated_env.write_text(
        f"[redis]\nurl = 'redis://127.0.0.1:{free_port()}/0'\n[report]\nlock_wait_sec = 0.3\n"
    )
    with open(tmp_path / ".health.json.lock", "a+") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        res = run_cli("report", "--output", str(out))
        assert res.returncode == 3
        assert "another qtctl report holds" in res.stderr and "wrote nothing" in res.stderr
        assert not out.exists()
        isolated_env.write_text(isolated_env.read_text().replace("0.3", "20"))
        threading.Timer(0.5, held.close).start()  # the first run finishes
        res = run_cli("report", "--output", str(out))
    assert res.returncode == 1, res.stderr  # it waited, then wrote the report
    assert json.loads(out.read_text())["status"] == "critical"
