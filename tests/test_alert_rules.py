"""The alert rules and dashboard that ship in units/monitoring/: `promtool check rules` and
`promtool test rules` (Debian's prometheus package) pass, and a broken rule makes them fail; every
alert follows the conventions (CamelCase, `for:`, severity, summary, runbook, a runbook_url that
resolves in the docs); and every metric the rules and panels query is one qtctl really exports,
read from the textfile `qtctl report` writes."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import redis
import yaml

from tests.conftest import REPO, run_cli
from tests.support.redis_server import RedisServer

MONITORING = REPO / "units" / "monitoring"
RULES = MONITORING / "qtctl.rules.yml"
DASHBOARD = MONITORING / "qtctl-dashboard.json"
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"
# PromQL words that are not metric names, in the expressions we ship.
PROMQL = {
    "sum", "max", "min", "count", "avg", "topk", "by", "without", "time", "absent", "and", "or",
    "unless", "on", "ignoring", "group_left", "group_right", "bool", "rate", "label_values",
}  # fmt: skip


def promtool(*args: str, cwd: Path = MONITORING) -> subprocess.CompletedProcess[str]:
    return subprocess.run([PROMTOOL, *args], capture_output=True, text=True, cwd=cwd, timeout=60)


def alerts() -> list[dict[str, object]]:
    doc = yaml.safe_load(RULES.read_text())
    return [rule for group in doc["groups"] for rule in group["rules"]]


def dashboard_exprs() -> list[str]:
    doc = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in doc["panels"] for t in p["targets"]]
    exprs += [v["definition"] for v in doc["templating"]["list"] if "definition" in v]
    return exprs


def metric_names(expr: str) -> set[str]:
    """Identifiers an expression selects: strings, label matchers, groupings, ranges removed."""
    bare = re.sub(r'"(?:[^"\\]|\\.)*"', "", expr)
    bare = re.sub(r"\{[^}]*\}|\[[^]]*\]", "", bare)
    bare = re.sub(r"\b(by|without|on|ignoring)\s*\([^)]*\)", "", bare)
    bare = re.sub(r"label_values\(\s*([a-zA-Z_:][a-zA-Z0-9_:]*)\s*,[^)]*\)", r"\1", bare)
    words = set(re.findall(r"\b[a-zA-Z_:][a-zA-Z0-9_:]*\b", bare))
    return {w for w in words if w not in PROMQL and not re.fullmatch(r"[0-9]+[smhd]?", w)}


def test_promtool_checks_the_rules() -> None:
    res = promtool("check", "rules", str(RULES))
    assert res.returncode == 0, res.stdout + res.stderr
    assert f"SUCCESS: {len(alerts())} rules found" in res.stdout


def test_promtool_unit_tests_pass_and_fail_on_a_broken_rule(tmp_path: Path) -> None:
    res = promtool("test", "rules", "qtctl.rules.test.yml")
    assert res.returncode == 0, res.stdout + res.stderr
    # The same tests against a dead-timer alert that waits an hour: they must catch it.
    broken = RULES.read_text().replace(
        "time() - qtctl_report_last_success_timestamp_seconds > 900",
        "time() - qtctl_report_last_success_timestamp_seconds > 3600",
    )
    assert broken != RULES.read_text()
    (tmp_path / "qtctl.rules.yml").write_text(broken)
    shutil.copy(MONITORING / "qtctl.rules.test.yml", tmp_path)
    res = promtool("test", "rules", "qtctl.rules.test.yml", cwd=tmp_path)
    assert res.returncode == 1 and "alertname: QtctlReportStale" in res.stdout + res.stderr


def test_every_alert_follows_the_conventions() -> None:
    rules = alerts()
    names = [str(r["alert"]) for r in rules]
    assert "QtctlReportStale" in names and len(names) == len(set(names))
    stale = next(r for r in rules if r["alert"] == "QtctlReportStale")
    assert "qtctl_report_last_success_timestamp_seconds" in str(stale["expr"])
    checks_md = (REPO / "docs" / "reference" / "checks.md").read_text()
    monitoring_md = (REPO / "docs" / "monitoring.md").read_text()
    for rule in rules:
        assert re.fullmatch(r"Qtctl(?:[A-Z][a-z]+)+", str(rule["alert"])), rule["alert"]
        assert re.fullmatch(r"[0-9]+[mh]", str(rule["for"])), rule["alert"]
        labels, notes = rule["labels"], rule["annotations"]
        assert isinstance(labels, dict) and isinstance(notes, dict)
        assert labels["severity"] in ("critical", "warning")
        assert {"summary", "runbook", "runbook_url"} <= set(notes), rule["alert"]
        page, _, anchor = str(notes["runbook_url"]).partition("#")
        assert page in ("docs/reference/checks.md", "docs/monitoring.md"), page
        if page == "docs/reference/checks.md" and "{{" not in anchor:
            assert f"## {anchor.upper()}\n" in checks_md, anchor
            assert f"qtctl explain {anchor.upper()}" in str(notes["runbook"])
        if page == "docs/monitoring.md":
            heading = anchor.replace("-", " ")
            assert re.search(rf"^## {re.escape(heading)}$", monitoring_md, re.M | re.I), anchor


def test_every_explained_code_exists() -> None:
    """A runbook's `qtctl explain CODE` must work: run each one the rules name."""
    codes = {c for r in alerts() for c in re.findall(r"QT[0-9]{3}", str(r["annotations"]))}
    assert codes
    for code in sorted(codes):
        res = run_cli("explain", code)
        assert res.returncode == 0 and res.stdout.startswith(f"{code} "), res.stderr


@pytest.fixture
def exported(redis_server: RedisServer, isolated_env: Path, tmp_path: Path) -> set[str]:
    """The metric families of a real textfile (one stream with a group and a consumer)."""
    client = redis.Redis.from_url(redis_server.url)
    client.xadd("quantum:stream:trade.closed", {"i": "1"})
    client.xgroup_create("quantum:stream:trade.closed", "rl", id="0")
    client.xreadgroup("rl", "w", {"quantum:stream:trade.closed": ">"})
    isolated_env.write_text(f"[redis]\nurl = '{redis_server.url}'\n")
    out = tmp_path / "qtctl.prom"
    assert run_cli("report", "-f", "prometheus", "-o", str(out), "--exit-zero").returncode == 0
    return set(re.findall(r"^# TYPE (\S+) gauge$", out.read_text(), re.M))


def test_rules_and_panels_query_only_what_qtctl_exports(exported: set[str]) -> None:
    assert "qtctl_stream_group_lag" in exported and "qtctl_systemd_unit_state" in exported
    for expr in [str(r["expr"]) for r in alerts()] + dashboard_exprs():
        names = metric_names(expr)
        assert names and names <= exported, (expr, names - exported)


def test_dashboard_is_valid_grafana_json_and_its_queries_parse(tmp_path: Path) -> None:
    doc = json.loads(DASHBOARD.read_text())
    ids = [p["id"] for p in doc["panels"]]
    assert len(ids) == len(set(ids)) and doc["uid"] and doc["schemaVersion"] >= 30
    for panel in doc["panels"]:
        assert panel["targets"] and panel["datasource"]["uid"] == "${datasource}"
        assert {"x", "y", "w", "h"} <= set(panel["gridPos"])
    # promtool parses each panel query, as a recording rule ($instance as Grafana expands All).
    exprs = [e.replace("$instance", ".*") for e in dashboard_exprs() if "label_values" not in e]
    rules = {"groups": [{"name": "panels", "rules": [
        {"record": f"qtctl:panel_{i}", "expr": e} for i, e in enumerate(exprs)
    ]}]}  # fmt: skip
    (tmp_path / "panels.yml").write_text(yaml.safe_dump(rules))
    res = promtool("check", "rules", str(tmp_path / "panels.yml"))
    assert res.returncode == 0, res.stdout + res.stderr
