"""A cause comes from evidence still true: a failed run's lines about a file that changed after
the run exited are stale (`changed-since-failure`, restartable), and a CRLF wrapper's
`can't open file 'main.py\\r'` is CRLF's mark, not a missing script. On a real systemd: a CRLF
wrapper fails, `qtctl fix --apply --unsafe` converts it and restarts the unit, which ends
active and `fixed`; a script fixed by hand after its failure is restarted without --only."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest

from qtctl.diagnosis.cause import Cause, ExecProbe
from qtctl.diagnosis.failure_cause import classify
from qtctl.diagnosis.stale_evidence import stale
from qtctl.sandbox import Sandbox, SandboxSpec
from tests.support.fleet import PY, ROOT, SLEEPER

ETC = "/etc/systemd/system"
MAIN = f"{ROOT}/microservices/publisher/main.py"
WRAPPER = f"{ROOT}/scripts/start_publisher.sh"
BROKEN = f"{ROOT}/microservices/broken/main.py"
EXITED = 1_780_000_000.0  # before today: the clock check passes
PROPS = {"Result": "exit-code", "ExecMainCode": 1, "ExecMainStatus": 2}
CANT_OPEN = [f"{PY}: can't open file '{MAIN}\\r': [Errno 2] No such file or directory"]


def _props(exited: float = EXITED) -> dict[str, object]:
    return {**PROPS, "ExecMainExitTimestamp": int(exited * 1e6)}


def test_a_trailing_cr_in_the_opened_path_is_crlf_not_a_missing_script() -> None:
    cause = classify(_props(), CANT_OPEN, None, exists=lambda p: p == MAIN)
    assert cause.kind == "bad-interpreter", cause


def test_a_file_changed_after_the_run_exited_makes_its_evidence_stale() -> None:
    probe = ExecProbe(WRAPPER, True, True)
    cause = Cause("bad-interpreter", "CRLF script")
    mtimes = {WRAPPER: EXITED + 5}
    found = stale(cause, _props(), CANT_OPEN, probe, mtimes.get, lambda: EXITED + 10)
    assert (found.kind, found.underlying, found.transient) == (
        "changed-since-failure",
        "bad-interpreter",
        True,
    )
    assert found.summary.startswith(f"{WRAPPER} changed at ")
    # unchanged since, or a clock far ahead of now: the evidence stands
    assert stale(cause, _props(), CANT_OPEN, probe, {WRAPPER: EXITED - 1}.get) is cause
    ahead = {WRAPPER: EXITED + 3600}.get
    assert stale(cause, _props(), CANT_OPEN, probe, ahead, lambda: EXITED + 10) is cause
    # edited since, but the CRLF is still in it: the evidence is still true
    crlf = ExecProbe(WRAPPER, True, True, body_crlf=True)
    assert stale(cause, _props(), CANT_OPEN, crlf, mtimes.get, lambda: EXITED + 10) is cause
    # an interpreter upgraded since is no change to the service's code
    python = ExecProbe("/usr/bin/python3.11", True, True)
    assert stale(cause, _props(), [], python, {python.path: EXITED + 1}.get) is cause
    # the path the run named (its \r dropped) counts too
    assert stale(cause, _props(), CANT_OPEN, None, {MAIN: EXITED + 1}.get).kind == (
        "changed-since-failure"
    )


def test_causes_with_fresh_checks_of_their_own_are_not_made_stale() -> None:
    touched = {WRAPPER: EXITED + 1}.get
    probe = ExecProbe(WRAPPER, True, True)
    for kind in ("import-error", "workdir-missing", "redis-unreachable"):
        cause = Cause(kind, "x")
        assert stale(cause, _props(), [], probe, touched) is cause
    assert stale(Cause("exit-code", "x"), {**PROPS}, [], probe, touched).kind == "exit-code"


@pytest.fixture(scope="module")
def box() -> Iterator[Sandbox]:
    crlf = f"#!/bin/bash\nexec {PY} {MAIN}\n".replace("\n", "\r\n")
    files = {
        MAIN: SLEEPER,
        WRAPPER: crlf,
        BROKEN: 'raise SystemExit("config version 1 is no longer supported")\n',
    }
    units = {
        "quantum-wrapped.service": f"/bin/bash {WRAPPER}",
        "quantum-fixed-by-hand.service": f"{PY} {BROKEN}",
    }
    texts = {
        name: f"[Unit]\nDescription=t\n[Service]\nExecStart={start}\nRestart=on-abnormal\n"
        "[Install]\nWantedBy=multi-user.target\n"
        for name, start in units.items()
    }
    links = {f"{ETC}/multi-user.target.wants/{n}": f"{ETC}/{n}" for n in texts}
    spec = SandboxSpec(units=texts, files=files, symlinks=links, wants=sorted(texts))
    with Sandbox(spec) as sandbox:
        for unit in texts:
            sandbox.wait_for(unit, ["failed"], timeout=90)
        time.sleep(0.5)
        sandbox.run("journalctl", "--sync")
        yield sandbox


def _run(box: Sandbox, command: str, units: str, *args: str) -> dict[str, dict]:  # type: ignore[type-arg]
    env = {
        "QTCTL__FLEET__UNITS": units,
        "QTCTL__FLEET__CODE_ROOTS": ROOT,
        "QTCTL__FIX__STATE_DIR": f"/var/lib/qtctl-{units.split('.')[0]}",
        "QTCTL__FIX__SETTLE_SEC": "1",
    }
    res = box.qtctl("--format", "json", command, "--select", "QT1,QT3", *args, env=env)
    assert res.returncode in (0, 1), res.stderr
    doc = json.loads(res.stdout)
    rows = doc["repairs"] if command == "fix" else doc["findings"]
    return {f"{r['code']} {r['subject']}": r for r in rows}


@pytest.mark.sandbox
def test_a_converted_crlf_wrapper_is_restarted_and_fixed(box: Sandbox) -> None:
    unit = "quantum-wrapped.service"
    assert f"can't open file '{MAIN}\\r'" in box.journal(unit)
    found = _run(box, "doctor", unit)
    assert found[f"QT101 {unit}"]["cause"] == "bad-interpreter"
    plan = _run(box, "fix", unit, "--apply", "--unsafe")
    assert plan[f"QT301 {unit}"]["result"] == "fixed", plan[f"QT301 {unit}"]
    assert plan[f"QT101 {unit}"]["result"] == "fixed", plan[f"QT101 {unit}"]
    assert box.systemctl("is-active", unit).stdout.strip() == "active"
    assert b"\r" not in box.host_path(WRAPPER).read_bytes()


@pytest.mark.sandbox
def test_a_script_fixed_after_its_failure_is_restarted(box: Sandbox) -> None:
    unit = "quantum-fixed-by-hand.service"
    before = _run(box, "fix", unit, "--unsafe")[f"QT101 {unit}"]
    assert before["cause"] == "exit-code" and before["result"] == "held", before
    assert "is in the service itself" in before["held"]
    box.write(BROKEN, SLEEPER)  # the operator fixes the code
    found = _run(box, "doctor", unit)[f"QT101 {unit}"]
    assert found["cause"] == "changed-since-failure", found
    assert f"{BROKEN} changed at" in found["message"]
    after = _run(box, "fix", unit, "--apply", "--unsafe")[f"QT101 {unit}"]
    assert after["result"] == "fixed", after
    assert box.systemctl("is-active", unit).stdout.strip() == "active"
