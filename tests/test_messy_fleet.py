"""Issue 22's proof: doctor and `fix --apply --unsafe` on the messy ~150-unit fleet in the sandbox.

Doctor finds every planted fault with its cause and nothing else at warning or error (info only
where true); fix changes no file of a healthy unit, restarts no healthy, protected or
permanently broken unit, and whatever it reports `fixed` is healthy and clean afterwards.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from qtctl.sandbox import Sandbox
from tests.support.messy_code import ROOT
from tests.support.messy_faults import (
    ETC,
    MISSING_DEPENDENCY,
    PROTECTED,
    SECRET_ENV,
    start_redis,
)
from tests.support.messy_fleet import MessyFleet, build

pytestmark = [pytest.mark.sandbox, pytest.mark.slow]
FLEET: MessyFleet = build()
SELECT = "QT1,QT2,QT3,QT703"  # units, code, line endings, env files: what the fleet plants
HASHED = (ROOT, ETC, "/etc/quantum", "/opt/quantum")
BOOT_SEC = 120.0  # ~150 units starting on 2 busy cores
FIX_RUNS = 3
SETTLE_SEC = 4.0  # past every RestartSec= of the fleet (2 s) and then some
ONESHOT = "quantum-db-migrate.service"
UNIT_STATE_CODES = ("QT101", "QT102", "QT103")  # a repair of one of these must leave it running
# Info findings that are true of this fleet: (code, cause) -> the subjects they may name.
TRUE_INFO = {
    ("QT104", "no-restart"): {PROTECTED, ONESHOT},  # Restart=no, deliberate there
    ("QT106", "drift"): FLEET.duplicated,  # matches one copy, an older copy differs
}
Findings = dict[tuple[str, str], dict[str, Any]]


@dataclass(frozen=True)
class Snapshot:
    """What fix may not change behind our back: file hashes and each unit's invocation."""

    files: dict[str, str]
    invocations: dict[str, str]


def settle(box: Sandbox, timeout: float = 180.0) -> None:
    """Wait until every unit is where the fleet plants it, none still starting."""
    names = sorted(FLEET.units)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        shown = box.systemctl("show", "-P", "ActiveState", *names).stdout.split()
        states = dict(zip(names, shown, strict=True))
        if all(states[n] == "active" for n in FLEET.healthy) and all(
            states[n] == "failed" for n in FLEET.failing
        ):
            box.run("journalctl", "--sync")
            return
        time.sleep(0.5)
    wrong = {n: s for n, s in states.items() if s not in ("active", "failed", "inactive")}
    raise AssertionError(f"the messy fleet did not settle: {wrong}")


def doctor(box: Sandbox) -> Findings:
    res = box.qtctl("--format", "json", "doctor", "--select", SELECT, timeout=300)
    assert res.returncode in (0, 1), res.stderr
    return {(f["code"], f["subject"]): f for f in json.loads(res.stdout)["findings"]}


def lines(finding: dict[str, Any]) -> list[str]:
    return [str(line) for line in finding.get("detail") or ()]


def loud(found: Findings) -> Findings:
    return {k: f for k, f in found.items() if f["severity"] in ("warning", "error")}


def snapshot(box: Sandbox) -> Snapshot:
    files: dict[str, str] = {}
    for top in HASHED:
        for folder, dirs, names in os.walk(box.host_path(top)):
            for name in dirs + names:
                path = os.path.join(folder, name)
                files[_box_path(box, path)] = _digest(path)
    return Snapshot(files, invocations(box, sorted(FLEET.units)))


def invocations(box: Sandbox, names: list[str]) -> dict[str, str]:
    """Unit -> its current InvocationID ('' when it never ran): a restart changes it."""
    shown = box.systemctl("show", "-p", "Id,InvocationID", *names).stdout.strip()
    blocks = [dict(line.split("=", 1) for line in b.splitlines()) for b in shown.split("\n\n")]
    return {block["Id"]: block.get("InvocationID", "") for block in blocks}


def _box_path(box: Sandbox, path: str) -> str:
    return "/" + os.path.relpath(path, box.host_path("/"))


def _digest(path: str) -> str:
    if os.path.islink(path):
        return f"link:{os.readlink(path)}"
    if os.path.isdir(path):
        return "dir"
    with open(path, "rb") as handle:
        data = handle.read()
    return f"{oct(os.stat(path).st_mode)}:{hashlib.sha256(data).hexdigest()}"


def repairable(path: str) -> bool:
    return any(path == p or path.startswith(p + "/") for p in FLEET.repairable)


@pytest.fixture(scope="module")
def box() -> Iterator[Sandbox]:
    with Sandbox(FLEET.spec()).boot(timeout=BOOT_SEC) as booted:
        settle(booted)
        start_redis(booted)
        yield booted


@pytest.fixture(scope="module")
def before(box: Sandbox) -> tuple[Findings, Snapshot]:
    return doctor(box), snapshot(box)


@pytest.fixture(scope="module")
def fixed(
    box: Sandbox, before: tuple[Findings, Snapshot]
) -> tuple[list[dict[str, Any]], Snapshot, Findings]:
    """`fix --apply --unsafe` as an operator runs it: again while the last run fixed something
    (the restart budget holds the rest for the next run), at most FIX_RUNS times."""
    latest: dict[tuple[str, str], dict[str, Any]] = {}
    for _ in range(FIX_RUNS):
        res = box.qtctl("--format", "json", "fix", "--apply", "--unsafe", timeout=600)
        assert res.returncode in (0, 1), res.stderr
        repairs = json.loads(res.stdout)["repairs"]
        latest |= {(r["code"], r["subject"]): r for r in repairs}
        time.sleep(SETTLE_SEC)
        if not any(r["result"] == "fixed" for r in repairs):
            break
    return list(latest.values()), snapshot(box), doctor(box)


def test_the_fleet_is_large_and_messy() -> None:
    copies = {os.path.dirname(p) for p in FLEET.files if p.endswith(".service")}
    assert len(FLEET.units) >= 140 and len(copies) >= 30
    assert build().units == FLEET.units and build(7).units != FLEET.units  # by seed
    subjects = {*FLEET.units, MISSING_DEPENDENCY, SECRET_ENV, "code roots", ROOT}
    assert {p.subject for p in FLEET.planted} <= subjects
    assert len(FLEET.failing) == len({p.subject for p in FLEET.planted if p.code == "QT101"})


def test_every_planted_fault_is_found_with_its_cause(before: tuple[Findings, Snapshot]) -> None:
    found, _ = before
    wrong = {}
    for planted in FLEET.planted:
        finding = found.get((planted.code, planted.subject))
        if finding is None:
            wrong[(planted.code, planted.subject)] = "missing"
            continue
        causes = set(str(finding["cause"]).split(","))
        text = "\n".join([str(finding["message"]), *lines(finding)])
        unnamed = [e for e in planted.evidence if e not in text]
        if causes != set(planted.cause.split(",")) or unnamed:
            wrong[(planted.code, planted.subject)] = f"cause {finding['cause']}, lacks {unnamed}"
    assert wrong == {}


def test_nothing_is_reported_that_was_not_planted(before: tuple[Findings, Snapshot]) -> None:
    found, _ = before
    false = {k: f["message"] for k, f in loud(found).items() if k not in FLEET.expected()}
    assert false == {}


def test_info_findings_are_true(before: tuple[Findings, Snapshot]) -> None:
    found, _ = before
    untrue = {
        k: f["message"]
        for k, f in found.items()
        if f["severity"] == "info" and k[1] not in TRUE_INFO.get((k[0], str(f["cause"])), set())
    }
    assert untrue == {}


def test_summaries_list_exactly_the_planted_files(before: tuple[Findings, Snapshot]) -> None:
    found, _ = before
    hacks = {line.split(":")[0] for line in lines(found[("QT202", "code roots")])}
    assert hacks == FLEET.sys_path_files
    crlf = {line for line in lines(found[("QT302", ROOT)]) if line.startswith("/")}
    assert crlf == FLEET.crlf_sources


def test_secret_names_alone_are_not_secrets(before: tuple[Findings, Snapshot]) -> None:
    found, _ = before
    detail = " ".join(lines(found[("QT703", SECRET_ENV)]))
    assert "BINANCE_API_SECRET" in detail and "ORDER_STREAM_KEY" not in detail


def test_fix_changes_no_file_of_a_healthy_unit(
    before: tuple[Findings, Snapshot], fixed: tuple[list[dict[str, Any]], Snapshot, Findings]
) -> None:
    old, new = before[1].files, fixed[1].files
    changed = sorted(p for p in old.keys() | new.keys() if old.get(p) != new.get(p))
    assert [p for p in changed if not repairable(p)] == []


def test_fix_restarts_no_healthy_protected_or_permanently_broken_unit(
    before: tuple[Findings, Snapshot], fixed: tuple[list[dict[str, Any]], Snapshot, Findings]
) -> None:
    permanent = {p.subject for p in FLEET.planted if p.permanent}
    untouchable = {*FLEET.healthy, *permanent, PROTECTED}
    old, new = before[1].invocations, fixed[1].invocations
    assert {u: (old[u], new[u]) for u in untouchable if old[u] != new[u]} == {}
    not_held = {r["subject"]: r["result"] for r in fixed[0] if r["subject"] in permanent}
    assert {u: result for u, result in not_held.items() if result != "held"} == {}


def test_what_fix_calls_fixed_is_healthy_and_rechecked_clean(
    box: Sandbox, fixed: tuple[list[dict[str, Any]], Snapshot, Findings]
) -> None:
    repairs, snap, again = fixed
    done = [r for r in repairs if r["result"] == "fixed"]
    units = sorted({str(r["subject"]) for r in done if r["code"] in UNIT_STATE_CODES})
    states = box.systemctl("show", "-P", "ActiveState", *units).stdout.split() if units else []
    assert {u: s for u, s in zip(units, states, strict=True) if s != "active"} == {}
    now = invocations(box, units) if units else {}
    assert {u: i for u, i in now.items() if snap.invocations[u] != i} == {}  # stayed up
    still = {(r["code"], r["subject"]) for r in done} & loud(again).keys()
    assert still == set()


def test_the_repairable_faults_are_repaired(
    fixed: tuple[list[dict[str, Any]], Snapshot, Findings],
) -> None:
    results = {(r["code"], r["subject"]): (r["result"], r.get("held")) for r in fixed[0]}
    feeds = [p.subject for p in FLEET.planted if p.cause == "dependency-missing"]
    crlf = ("QT301", "QT101")  # convert the script, then restart its unit
    wanted = [
        ("QT201", "quantum-risk-proposal.service"),  # the root: the computed root is wrong
        ("QT101", "quantum-risk-proposal.service"),
        *((code, p.subject) for p in FLEET.planted if p.code == "QT301" for code in crlf),
        ("QT703", SECRET_ENV),
        *(("QT101", feed) for feed in feeds),
    ]
    assert {k: results.get(k) for k in wanted if results.get(k, ("",))[0] != "fixed"} == {}
