"""`qtctl fix` repairs the root first, on a real systemd: with Redis down it restarts Redis' unit
first (when `fix.redis_unit` names it) or holds everything that needs Redis; it never restarts a
unit whose Requires= unit is failed; and a restart budget per run and a rate limit across runs
hold the rest, saying why."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest

from qtctl.sandbox import Sandbox, SandboxSpec
from tests.support.fleet import PY, REDIS_CONSUMER, ROOT

pytestmark = pytest.mark.sandbox
ETC = "/etc/systemd/system"
CONSUMER = f"{ROOT}/microservices/stream_consumer/main.py"
REDIS_UNIT = "quantum-chain-redis.service"
CONSUMERS = [f"quantum-chain-c{i}.service" for i in range(1, 5)]
NEEDS_DEP = "quantum-chain-needs-dep.service"
DEP = "quantum-chain-dep.service"
LEDGER = "/var/lib/qtctl-chain/restarts.json"
INSTALL = "[Install]\nWantedBy=multi-user.target\n"


def _unit(exec_start: str, unit_extra: str = "", install: str = INSTALL) -> str:
    return f"[Unit]\nDescription=t\n{unit_extra}[Service]\nExecStart={exec_start}\n{install}"


def spec() -> SandboxSpec:
    units = {u: _unit(f"{PY} {CONSUMER}") for u in CONSUMERS}
    units[REDIS_UNIT] = _unit("/usr/bin/redis-server --port 6399 --save ''", install="")
    units[DEP] = _unit("/bin/false")
    units[NEEDS_DEP] = _unit(f"{PY} {CONSUMER}", f"Requires={DEP}\n")
    enabled = [u for u in units if u != REDIS_UNIT]
    links = {f"{ETC}/multi-user.target.wants/{n}": f"{ETC}/{n}" for n in enabled}
    files = {CONSUMER: REDIS_CONSUMER}
    return SandboxSpec(units=units, files=files, symlinks=links, wants=sorted(enabled))


@pytest.fixture(scope="module")
def box() -> Iterator[Sandbox]:
    with Sandbox(spec()) as sandbox:
        for unit in [*CONSUMERS, DEP, NEEDS_DEP]:
            sandbox.wait_for(unit, ["failed"], timeout=90)
        time.sleep(0.5)
        sandbox.run("journalctl", "--sync")
        yield sandbox


def fix(box: Sandbox, *args: str, **config: str) -> tuple[int, dict[str, dict]]:  # type: ignore[type-arg]
    env = {
        "QTCTL__FLEET__UNITS": "quantum-chain-*",
        "QTCTL__FIX__STATE_DIR": "/var/lib/qtctl-chain",
        "QTCTL__REDIS__URL": "redis://127.0.0.1:6399/0",
        "QTCTL__FIX__SETTLE_SEC": "1",
        **{f"QTCTL__FIX__{k.upper()}": v for k, v in config.items()},
    }
    res = box.qtctl("--format", "json", "fix", "--select", "QT101,QT400", *args, env=env)
    assert res.returncode in (0, 1), res.stderr
    doc = json.loads(res.stdout)
    return res.returncode, {f"{r['code']} {r['subject']}": r for r in doc["repairs"]} | {"": doc}


def started(box: Sandbox, unit: str) -> int:
    return int(box.systemctl("show", "-P", "ExecMainStartTimestampMonotonic", unit).stdout)


def invocations(box: Sandbox, *units: str) -> dict[str, str]:
    return {u: box.systemctl("show", "-P", "InvocationID", u).stdout.strip() for u in units}


def test_1_with_redis_down_and_no_redis_unit_nothing_that_needs_redis_restarts(
    box: Sandbox,
) -> None:
    before = invocations(box, *CONSUMERS, NEEDS_DEP)
    _, plan = fix(box, "--apply", "--unsafe")
    root = plan["QT400 redis"]
    assert (root["result"], root["rule"]) == ("held", "chain")
    assert (
        root["held"] == "fix.redis_unit names no unit on this host: start the Redis server by hand"
    )
    for unit in CONSUMERS:
        assert plan[f"QT101 {unit}"]["rule"] == "chain"
        assert plan[f"QT101 {unit}"]["held"] == (
            "root cause first: Redis is down (QT400) and fix.redis_unit names no unit on this "
            "host: start the Redis server by hand; a restart would fail"
        )
    assert sorted(plan[""]["held"]["chain"]) == sorted(["redis", *CONSUMERS])
    assert invocations(box, *CONSUMERS, NEEDS_DEP) == before


def test_2_redis_unit_first_then_its_consumers_within_the_budget(box: Sandbox) -> None:
    _, plan = fix(box, "--apply", "--unsafe", redis_unit=REDIS_UNIT, max_restarts="3")
    assert plan["QT400 redis"]["result"] == "fixed"
    assert box.systemctl("is-active", REDIS_UNIT).stdout.strip() == "active"
    results = {u: plan[f"QT101 {u}"] for u in CONSUMERS}
    fixed = [u for u, r in results.items() if r["result"] == "fixed"]
    assert fixed == CONSUMERS[:2]  # Redis + 2 consumers: the budget of 3
    for unit in CONSUMERS[2:]:
        assert (results[unit]["result"], results[unit]["rule"]) == ("held", "budget")
        assert results[unit]["held"].startswith(
            "restart budget: this run already restarts 3 units (fix.max_restarts = 3)"
        )
        assert box.systemctl("is-active", unit).stdout.strip() == "failed"
    for unit in fixed:  # the root came up before its consequences were restarted
        assert started(box, REDIS_UNIT) < started(box, unit)
    assert sorted(plan[""]["held"]["budget"]) == CONSUMERS[2:]


def test_3_never_restart_a_unit_whose_required_unit_is_failed(box: Sandbox) -> None:
    before = invocations(box, NEEDS_DEP)
    _, plan = fix(box, "--apply", "--unsafe", max_restarts="0")
    repair = plan[f"QT101 {NEEDS_DEP}"]
    assert repair["held"] == (
        f"root cause first: it requires {DEP}, which is failed: repair that one first"
    )
    assert invocations(box, NEEDS_DEP) == before
    assert plan[f"QT101 {DEP}"]["result"] == "held"  # exit-code: a cause in the service


def test_4_the_rate_limit_holds_a_unit_restarted_too_often(box: Sandbox) -> None:
    ledger = json.loads(box.host_path(LEDGER).read_text())
    restarted = {row["unit"] for row in ledger["restarts"]}
    assert {REDIS_UNIT, *CONSUMERS[:2]} <= restarted  # written by the runs above, root only
    assert box.host_path(LEDGER).stat().st_mode & 0o777 == 0o600
    box.systemctl("kill", "--signal=KILL", CONSUMERS[0], check=True)
    box.wait_for(CONSUMERS[0], ["failed"])
    _, plan = fix(box, "--apply", "--unsafe", restart_limit="1", max_restarts="1")
    assert plan[f"QT101 {CONSUMERS[0]}"]["held"].startswith("qtctl fix restarted it at")
    # c3 was never restarted: the per-unit limit leaves it alone
    assert plan[f"QT101 {CONSUMERS[2]}"]["result"] == "fixed"
    assert plan[f"QT101 {CONSUMERS[3]}"]["rule"] == "budget"
    # a unit qtctl restarted (the ledger says so), then reset-failed and failed again
    # before anyone looked: held by the limit across runs
    now = time.time()
    rows = [{"unit": CONSUMERS[3], "at": now - 60}, {"unit": CONSUMERS[3], "at": now - 30}]
    box.write(LEDGER, json.dumps({"restarts": rows}), 0o600)
    _, plan = fix(box, "--apply", "--unsafe", restart_limit="2")
    held = plan[f"QT101 {CONSUMERS[3]}"]
    assert (held["result"], held["rule"]) == ("held", "rate-limit")
    assert held["held"].startswith("rate limit: qtctl fix restarted it 2 times within 3600 s")


def test_5_a_ledger_someone_else_could_write_holds_every_restart(box: Sandbox) -> None:
    box.host_path(LEDGER).chmod(0o666)
    _, plan = fix(box, "--apply", "--unsafe")
    held = plan[f"QT101 {CONSUMERS[3]}"]
    assert (held["result"], held["rule"]) == ("held", "rate-limit")
    assert held["held"] == (
        f"{LEDGER} is not qtctl's own (uid 0, mode 0666): restarts are held until it is removed"
    )
