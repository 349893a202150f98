"""The Prometheus textfile proven with the real tools (Debian's packages, scripts/setup.sh):
`promtool check metrics` lints it, `prometheus-node-exporter` with only its textfile collector
serves it from a loopback port, and inside the systemd sandbox node_exporter's own systemd
collector and qtctl's unit series agree label for label, so the two join on `name`."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from qtctl.sandbox import Sandbox, SandboxSpec
from tests.conftest import run_cli
from tests.support.redis_server import RedisServer, free_port

NODE_EXPORTER = shutil.which("prometheus-node-exporter") or "/usr/bin/prometheus-node-exporter"
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"
P = "quantum:stream:"
HOSTILE = 'quantum:stream:we"ird\\name\nnext'
SAMPLE = re.compile(r"^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?P<labels>\{.*\})? (?P<value>\S+)$")
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Exposition text as {(name, labels): value}; label values unescaped as Prometheus does."""
    out = {}
    for line in text.splitlines():
        match = SAMPLE.match(line)
        if line.startswith("#") or not match:
            continue
        pairs = LABEL.findall(match["labels"] or "")
        labels = frozenset((k, _unescape(v)) for k, v in pairs)
        out[(match["name"], labels)] = float(match["value"])
    return out


def _unescape(value: str) -> str:
    return re.sub(r"\\(.)", lambda m: "\n" if m[1] == "n" else m[1], value)


def key(name: str, **labels: str) -> tuple[str, frozenset[tuple[str, str]]]:
    return name, frozenset(labels.items())


def seed(server: RedisServer, config: Path) -> None:
    client = redis.Redis.from_url(server.url, decode_responses=True)
    for i in range(30):
        client.xadd(f"{P}model.retrain", {"i": str(i)})
    ids = [client.xadd(f"{P}trade.closed", {"i": str(i)}) for i in range(6)]
    client.xgroup_create(f"{P}trade.closed", "rl", id="0")
    client.xreadgroup("rl", "worker-1", {f"{P}trade.closed": ">"}, count=2)
    client.xadd(f"{P}gapped", {"i": "0"})
    gap = client.xadd(f"{P}gapped", {"i": "1"})
    client.xadd(f"{P}gapped", {"i": "2"})
    client.xgroup_create(f"{P}gapped", "late", id="0")
    client.xdel(f"{P}gapped", gap)  # a tombstone after the group's position: lag unknown
    client.xadd(HOSTILE, {"i": "0"})
    assert ids
    config.write_text(
        f"[redis]\nurl = '{server.url}'\n[doctor]\nselect = ['QT4']\n"
        "[streams]\nexpected = ['trade.closed']\nlength_warn = 20\n"
    )


def scrape(port: int, timeout: float = 10.0) -> str:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as reply:
                return str(reply.read().decode())
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


@pytest.fixture
def node_exporter(tmp_path: Path) -> Iterator[tuple[Path, int]]:
    """The real node_exporter on a free loopback port, textfile collector only; killed by pid."""
    folder = tmp_path / "textfile"
    folder.mkdir()
    port = free_port()
    proc = subprocess.Popen(
        [
            NODE_EXPORTER,
            f"--web.listen-address=127.0.0.1:{port}",
            "--collector.disable-defaults",
            "--collector.textfile",
            f"--collector.textfile.directory={folder}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        yield folder, port
    finally:
        proc.kill()
        proc.wait(timeout=10)


def test_node_exporter_serves_the_textfile_without_a_scrape_error(
    redis_server: RedisServer, isolated_env: Path, node_exporter: tuple[Path, int]
) -> None:
    folder, port = node_exporter
    seed(redis_server, isolated_env)
    out = folder / "qtctl.prom"
    res = run_cli("report", "--format", "prometheus", "--output", str(out))
    assert (res.returncode, res.stderr) == (1, ""), out.read_text()  # QT407: a lag unknown
    lint = subprocess.run(
        [PROMTOOL, "check", "metrics"], input=out.read_text(), text=True, capture_output=True
    )
    assert (lint.returncode, lint.stdout + lint.stderr) == (0, "")
    got = samples(scrape(port))
    assert got[key("node_textfile_scrape_error")] == 0
    assert got[key("node_textfile_mtime_seconds", file=str(out))] > 0
    closed = {"stream": f"{P}trade.closed", "group": "rl"}
    expected = {
        key("qtctl_health_status"): 2,
        key("qtctl_findings", code="QT401", severity="warning"): 1,
        key("qtctl_findings", code="QT407", severity="error"): 1,
        key("qtctl_findings_by_severity", severity="error"): 1,
        key("qtctl_findings_by_severity", severity="info"): 0,
        key("qtctl_stream_length", stream=f"{P}model.retrain"): 30,
        key("qtctl_stream_length", stream=HOSTILE): 1,
        key("qtctl_stream_group_messages_pending", **closed): 2,
        key("qtctl_stream_group_lag", **closed): 4,
        key("qtctl_stream_group_lag_known", **closed): 1,
        key("qtctl_stream_group_entries_read", **closed): 2,
        key("qtctl_stream_group_consumers", **closed): 1,
        key("qtctl_stream_group_consumer_messages_pending", **closed, consumer="worker-1"): 2,
        key("qtctl_stream_group_lag_known", stream=f"{P}gapped", group="late"): 0,
        key("qtctl_streams_known"): 1,
        key("qtctl_systemd_units_known"): 0,
    }
    assert {k: got.get(k) for k in expected} == expected
    assert key("qtctl_stream_group_lag", stream=f"{P}gapped", group="late") not in got  # no -1
    age = got[key("qtctl_stream_last_entry_age_seconds", stream=f"{P}model.retrain")]
    assert 0 <= age < 60
    stamp = got[key("qtctl_report_last_success_timestamp_seconds")]
    assert abs(stamp - time.time()) < 60
    names = {name for name, _ in got if name.startswith("qtctl_")}
    assert not [n for n in names if n.endswith("_total")]
    assert not [v for (n, _), v in got.items() if n.startswith("qtctl_") and v < 0]


def test_promtool_lints_the_file_qtctl_writes_with_a_dead_backend(
    isolated_env: Path, tmp_path: Path
) -> None:
    """Redis down and systemd absent: still a valid file, the `*_known` series say 0."""
    isolated_env.write_text(f"[redis]\nurl = 'redis://127.0.0.1:{free_port()}/0'\n")
    out = tmp_path / "qtctl.prom"
    res = run_cli("report", "--format", "prometheus", "--output", str(out))
    assert res.returncode == 1, res.stderr
    lint = subprocess.run(
        [PROMTOOL, "check", "metrics"], input=out.read_text(), text=True, capture_output=True
    )
    assert (lint.returncode, lint.stdout + lint.stderr) == (0, "")
    got = samples(out.read_text())
    assert got[key("qtctl_streams_known")] == 0 and got[key("qtctl_systemd_units_known")] == 0
    assert got[key("qtctl_health_status")] == 2


UNITS = {
    "quantum-simple.service": "[Service]\nExecStart=/bin/sleep 3600\n",
    "quantum-broken.service": "[Service]\nExecStart=/bin/false\n",
    "quantum-tick.timer": "[Timer]\nOnActiveSec=1h\n[Install]\nWantedBy=timers.target\n",
}
PROBE = (
    "import sys, urllib.request; "
    "print(urllib.request.urlopen('http://127.0.0.1:' + sys.argv[1] + '/metrics').read().decode())"
)


@pytest.fixture(scope="module")
def box() -> Iterator[Sandbox]:
    spec = SandboxSpec(
        units=UNITS,
        wants=["quantum-simple.service", "quantum-broken.service", "quantum-tick.timer"],
    )
    with Sandbox(spec) as sandbox:
        yield sandbox


@pytest.mark.sandbox
def test_unit_series_join_node_exporters_systemd_collector_on_name(box: Sandbox) -> None:
    """node_exporter's systemd collector and qtctl read the same systemd (in the box): every
    fleet unit has the same {name, state, type} series with the same 0/1 values in both."""
    box.wait_for("quantum-broken.service", ["failed"])
    box.run("mkdir", "-p", "/var/lib/qtctl-report", check=True)
    res = box.qtctl(
        "report",
        "--format",
        "prometheus",
        "--exit-zero",
        "--output",
        "/var/lib/qtctl-report/qtctl.prom",
    )
    assert res.returncode == 0, res.stderr
    port = "9911"
    box.run(
        "systemd-run",
        "--unit=node-exporter-probe",
        NODE_EXPORTER,
        f"--web.listen-address=127.0.0.1:{port}",
        "--collector.disable-defaults",
        "--collector.systemd",
        "--collector.textfile",
        "--collector.textfile.directory=/var/lib/qtctl-report",
        check=True,
    )
    text = ""
    deadline = time.monotonic() + 15
    while "node_systemd_unit_state" not in text and time.monotonic() < deadline:
        text = box.run(sys.executable, "-c", PROBE, port).stdout
        time.sleep(0.1)
    got = samples(text)
    assert got[key("node_textfile_scrape_error")] == 0
    ours = {labels: v for (n, labels), v in got.items() if n == "qtctl_systemd_unit_state"}
    theirs = {
        labels: v
        for (n, labels), v in got.items()
        if n == "node_systemd_unit_state" and dict(labels)["name"].startswith("quantum-")
    }
    assert ours == theirs, json.dumps(sorted(map(sorted, set(ours) ^ set(theirs))))
    state = {dict(k)["name"]: dict(k)["state"] for k, v in ours.items() if v == 1}
    names = sorted(state)
    assert names == ["quantum-broken.service", "quantum-simple.service", "quantum-tick.timer"]
    told = box.systemctl("show", "-P", "ActiveState", *names).stdout.split()
    assert [state[n] for n in names] == told and told[:2] == ["failed", "active"]
    types = {dict(k)["name"]: dict(k)["type"] for k in ours}
    assert types["quantum-simple.service"] == "simple" and types["quantum-tick.timer"] == ""
