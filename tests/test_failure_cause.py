"""The failure classifier on real journal text, one case per cause (fast, no sandbox)."""

from __future__ import annotations

import pytest

from qtctl.diagnosis.failure_cause import ExecProbe, classify

EXITED, KILLED, DUMPED = 1, 2, 3
TRACE = ["Traceback (most recent call last):", '  File "/app/main.py", line 9, in run']


def props(result: str = "exit-code", code: int = EXITED, status: int = 1, **extra: object) -> dict:
    return {"Result": result, "ExecMainCode": code, "ExecMainStatus": status, **extra}


@pytest.mark.parametrize(
    ("unit", "lines", "kind", "summary"),
    [
        (
            props(),
            [*TRACE, "ImportError: cannot import name 'Stops' from 'ai_engine.risk' (/x/risk.py)"],
            "import-error",
            "ImportError: cannot import name",
        ),
        (
            props(),
            [
                *TRACE,
                "redis.exceptions.ConnectionError: Error 111 connecting to "
                "127.0.0.1:6379. Connection refused.",
            ],
            "redis-unreachable",
            "cannot reach Redis",
        ),
        (
            props(),
            [*TRACE, "ZeroDivisionError: division by zero"],
            "python-exception",
            "ZeroDivisionError: division by zero at /app/main.py:9 in run",
        ),
        (props(), ["/opt/q/run.sh: line 2: $'\\r': command not found"], "bad-interpreter", ""),
        (
            props(),
            ["/bin/bash^M: bad interpreter: No such file or directory"],
            "bad-interpreter",
            "",
        ),
        (props(status=217, User="quantumsvc"), [], "bad-user", "User=quantumsvc does not exist"),
        (props("signal", KILLED, 15), [], "signal", "killed by signal 15/SIGTERM"),
        (props("core-dump", DUMPED, 11), [], "core-dump", "dumped core on signal 11/SIGSEGV"),
        (props("timeout", KILLED, 15), [], "timeout", "within its timeout"),
        (props("oom-kill", KILLED, 9, MemoryMax=2**64 - 1), [], "oom-kill", "no MemoryMax set"),
        (props("dependency"), [], "dependency", "a unit it requires"),
        (props(status=200), [], "exit-code", "exited with status 200/CHDIR"),
        (props(status=3), ["ok"], "exit-code", "exited with status 3"),
        (
            props(status=1),
            ["Start request repeated too quickly."],
            "start-limit-hit",
            "last failure: exit-code",
        ),
    ],
)
def test_classify(unit: dict, lines: list[str], kind: str, summary: str) -> None:
    cause = classify(unit, lines)
    assert cause.kind == kind
    assert summary in cause.summary


def test_exec_failures_use_the_file_system_evidence() -> None:
    unit = props(status=203)
    missing = ExecProbe("/opt/q/run", exists=False, executable=False)
    assert classify(unit, [], missing).kind == "exec-not-found"
    not_exec = ExecProbe("/opt/q/run", exists=True, executable=False)
    assert "not executable" in classify(unit, [], not_exec).summary
    crlf = ExecProbe("/opt/q/run.sh", exists=True, executable=True, shebang_cr=True)
    assert classify(unit, [], crlf).kind == "bad-interpreter"
    bom = ExecProbe("/opt/q/run.sh", exists=True, executable=True, bom=True)
    assert "BOM" in classify(unit, [], bom).summary


def test_oom_on_cgroup_v1_needs_the_kernel_line() -> None:
    unit = props("signal", KILLED, 9)
    assert classify(unit, []).kind == "signal"
    assert classify(unit, [], oom_killed=True).kind == "oom-kill"


def test_a_stray_carriage_return_in_binary_junk_is_not_crlf() -> None:
    junk = ["tick 7 \x00\x01\r\x02", *TRACE, "ValueError: NaN"]
    python = ExecProbe("/app/main.py", exists=True, executable=True, body_crlf=False)
    assert classify(props(), junk, python).kind == "python-exception"
    script = ExecProbe("/app/run.sh", exists=True, executable=True, body_crlf=True)
    assert classify(props(), ["sleep: invalid time interval '1\r'"], script).kind == (
        "bad-interpreter"
    )
