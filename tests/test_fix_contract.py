"""The check→fix contract: fix plans from typed facts only, every fixable code has exactly one
planner of the facts its check declares, and every action declares its stage, journal and undo."""

from __future__ import annotations

import dataclasses
import time
import typing
from pathlib import Path

import pytest
import redis

from qtctl.catalog import all_codes
from qtctl.config import load_config
from qtctl.doctor import run_doctor
from qtctl.engine.context import CheckContext
from qtctl.engine.facts import Facts
from qtctl.engine.findings import Finding
from qtctl.fix.actions import Action, HostAction, StreamAction
from qtctl.fix.changes import Change, Stage
from qtctl.fix.planner import PLANNERS, plan
from qtctl.fix.policy import FixOptions
from qtctl.fix.repair import Repair
from tests.support.redis_server import RedisServer

P = "quantum:stream:"


def test_every_fixable_code_has_one_planner_of_its_declared_facts() -> None:
    declared = {code: doc.repair for code, doc in all_codes().items() if doc.repair is not None}
    assert declared, "no code declares a repair"
    assert set(declared) == set(PLANNERS), "a fixable code without planner, or the reverse"
    for code, facts in declared.items():
        assert PLANNERS[code].facts is facts, code


def test_every_facts_type_is_used_by_some_code() -> None:
    used = {doc.repair for doc in all_codes().values() if doc.repair is not None}
    assert used == set(typing.get_args(Facts))


def test_every_action_declares_its_stage_journal_and_undo() -> None:
    actions = typing.get_args(Action)
    assert set(actions) == set(typing.get_args(HostAction)) | set(typing.get_args(StreamAction))
    journaled: set[Change] = set()
    for action in actions:
        assert isinstance(action.stage, Stage), action
        assert action.records and all(isinstance(k, Change) for k in action.records), action
        assert action.undo.strip(), f"{action.__name__} states no undo (nor why there is none)"
        journaled.update(action.records)
    # No journal kind that no action writes: undo's exhaustive match covers exactly these.
    assert journaled | {Change.FAILED} == set(Change)


def test_restarts_come_last_and_reloads_after_every_file_change() -> None:
    stages = {a.__name__: a.stage for a in typing.get_args(Action)}
    assert max(stages.values()) == stages["Restart"] == Stage.RESTART
    assert stages["ResetFailed"] < stages["Restart"]
    content = [name for name, stage in stages.items() if stage == Stage.CONTENT]
    assert "WriteDropIn" in content and "RemoveLink" in content
    assert stages["SecureFile"] > stages["RewriteFile"]  # a rewrite keeps the old mode


class _Unreadable(str):
    """A message no planner may read: any use of it fails the test."""

    def __getattribute__(self, name: str) -> typing.Any:
        raise AssertionError(f"a planner read the finding's message (.{name})")

    def __iter__(self) -> typing.Any:
        raise AssertionError("a planner iterated the finding's message")

    def __contains__(self, item: object) -> bool:
        raise AssertionError("a planner searched the finding's message")


class _UnreadableDetail(tuple):  # type: ignore[type-arg]
    """Detail no planner may read."""

    def __iter__(self) -> typing.Any:
        raise AssertionError("a planner read the finding's detail")

    def __getitem__(self, index: typing.Any) -> typing.Any:
        raise AssertionError("a planner indexed the finding's detail")

    def __len__(self) -> int:
        raise AssertionError("a planner measured the finding's detail")


def _messy_world(server: RedisServer, tmp_path: Path, config: Path) -> None:
    """A stream fleet with one finding per stream repair, an env file exposing a secret, and
    CRLF sources."""
    client = redis.Redis.from_url(server.url, decode_responses=True)
    pipe = client.pipeline(transaction=False)
    for i in range(2_500):
        pipe.xadd(f"{P}model.retrain", {"i": str(i)})
    pipe.execute()
    closed, group = f"{P}trade.closed", "quantum:group:rl:trade.closed"
    for i in range(30):
        client.xadd(closed, {"i": str(i)})
    client.xgroup_create(closed, group, id="0")
    client.xreadgroup(group, "rl-agent-old", {closed: ">"}, count=20)
    client.xgroup_create(f"{P}apply.plan", "quantum:group:apply", id="0", mkstream=True)
    client.xadd(f"{P}apply.plan", {"i": "0"})
    client.xreadgroup("quantum:group:apply", "apply-old", {f"{P}apply.plan": ">"})
    client.xack(f"{P}apply.plan", "quantum:group:apply", client.xrange(f"{P}apply.plan")[0][0])
    time.sleep(2.2)
    client.xreadgroup(group, "rl-agent-new", {closed: ">"}, count=5)
    base = int(time.time() * 1000) - 60_000
    for i in range(25):
        client.xadd(f"{P}trade.execution.res", {"i": str(i)}, id=f"{base + i}-0")
    code, envs = tmp_path / "code", tmp_path / "env"
    code.mkdir()
    envs.mkdir()
    (code / "bridge.py").write_text(f"DEST = '{P}trade.execution.result'\n")
    (code / "legacy.py").write_bytes(b"import os\r\nprint(os.getcwd())\r\n")
    secret = envs / "exchange.env"
    secret.write_text("EXCHANGE_API_SECRET=s3cr3t-value # the live key\n")
    secret.chmod(0o644)
    config.write_text(
        f"[redis]\nurl = '{server.url}'\n[fix]\nstate_dir = '{tmp_path / 'state'}'\n"
        f"[fleet]\ncode_roots = ['{code}']\n[services]\nenv_dirs = ['{envs}']\n"
        "[doctor]\nselect = ['QT3', 'QT4', 'QT7']\n"
        "[streams]\nexpected = ['trade.execution.result']\nlength_warn = 2000\n"
        "dead_consumer_sec = 2\n"
        "[streams.per_stream.\"apply.plan\"]\ngroups = ['quantum:group:audit']\n"
    )


def _plans(findings: list[Finding], ctx: CheckContext) -> list[tuple[object, ...]]:
    return [_shape(r) for r in plan(findings, ctx, FixOptions(unsafe=True))]


def _shape(repair: Repair) -> tuple[object, ...]:
    f = repair.finding
    return (f.code, f.subject, f.cause, repair.actions, repair.held, repair.manual, repair.diff)


@pytest.mark.redis
def test_reworded_or_unreadable_messages_plan_the_same_repairs(
    redis_server: RedisServer, tmp_path: Path, isolated_env: Path
) -> None:
    _messy_world(redis_server, tmp_path, isolated_env)
    config = load_config()
    ctx = CheckContext(config)
    try:
        findings = list(run_doctor(config, ctx=ctx).findings)
        codes = {f.code for f in findings if f.fixable}
        assert {"QT302", "QT401", "QT403", "QT404", "QT405", "QT703"} <= codes, codes
        planned = _plans(findings, ctx)
        reworded = [
            dataclasses.replace(f, message="reworded for people", detail=("see the runbook",))
            for f in findings
        ]
        assert _plans(reworded, ctx) == planned
        unreadable = [
            dataclasses.replace(f, message=_Unreadable("x"), detail=_UnreadableDetail())
            for f in findings
        ]
        assert [s[3:] for s in _plans(unreadable, ctx)] == [s[3:] for s in planned]
    finally:
        ctx.close()
    assert any(s[3] and not s[4] for s in planned), "nothing runnable was planned"


def test_a_finding_without_its_facts_is_held_not_guessed(isolated_env: Path) -> None:
    from qtctl.engine.facts import StreamFacts
    from qtctl.engine.findings import Severity
    from qtctl.fix.planner import plan_one
    from qtctl.fix.repair import Planning

    config = load_config()
    wrong = Finding(
        "QT403", Severity.WARNING, "s group g", "consumer group missing", facts=StreamFacts("s")
    )
    planning = Planning(CheckContext(config), FixOptions(), {}, "", {})
    repair = plan_one(wrong, planning)
    assert not repair.actions
    assert repair.held.startswith("internal: QT403 carries StreamFacts, not the GroupFacts")


@pytest.mark.redis
def test_json_report_carries_the_facts_under_the_same_schema(
    redis_server: RedisServer, tmp_path: Path, isolated_env: Path
) -> None:
    import json

    from tests.conftest import run_cli

    _messy_world(redis_server, tmp_path, isolated_env)
    res = run_cli("--format", "json", "doctor")
    doc = json.loads(res.stdout)
    assert doc["schema"] == "qtctl.report/2", res.stderr
    findings = doc["findings"]
    assert all(("facts" in f) and (f["fixable"] == (f["facts"] is not None)) for f in findings)
    [group] = [f["facts"] for f in findings if f["code"] == "QT403"]
    assert group == {
        "kind": "GroupFacts",
        "stream": f"{P}apply.plan",
        "group": "quantum:group:audit",
    }
    [consumer] = [f["facts"] for f in findings if f["code"] == "QT404" and f["facts"]["pending"]]
    assert (consumer["consumer"], consumer["live"]) == ("rl-agent-old", ["rl-agent-new"])
