"""The failure classifier on real journal text, one case per cause (fast, no sandbox)."""

from __future__ import annotations

import pytest

from qtctl.diagnosis.failure_cause import ExecProbe, classify

EXITED, KILLED, DUMPED = 1, 2, 3
TRACE = ["Traceback (most recent call last):", '  File "/app/main.py", line 9, in run']


def props(
    result: str = "exit-code", code: int = EXITED, status: int = 1, **extra: object
) -> dict[str, object]:
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
        (props("dependency"), [], "dependency-down", "a unit it requires"),
        (props(status=200), [], "workdir-missing", "200/CHDIR"),
        (props(status=3), ["ok"], "exit-code", "exited with status 3"),
        (
            props(status=1),
            ["Start request repeated too quickly."],
            "start-limit-hit",
            "last failure: exit-code",
        ),
    ],
)
def test_classify(unit: dict[str, object], lines: list[str], kind: str, summary: str) -> None:
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


GHOST_TREE = {"/srv/code/microservices/x", "/srv/code/microservices/x/main.py"}


def on_disk(path: str) -> bool:
    return path in GHOST_TREE or path in ("/", "/var", "/var/log", "/etc", "/srv", "/srv/code")


def pre(status: int, key: str = "ExecStartPre") -> dict[str, object]:
    command = ("/bin/sh", ["/bin/sh", "-c", f"exit {status}"], False, 0, 0, 0, 0, 7, EXITED, status)
    return {**props(code=0, status=0), key: [command]}


@pytest.mark.parametrize(
    ("unit", "lines", "kind", "missing", "summary"),
    [
        (
            props(status=200, WorkingDirectory="/opt/q/microservices/x"),
            [],
            "workdir-missing",
            "/opt/q/microservices/x",
            "likely at /srv/code/microservices/x",
        ),
        (
            props(
                status=209,
                StandardOutput="append",
                StandardOutputFileDescriptorName="/var/log/q/a/x.log",
            ),
            [],
            "log-dir-missing",
            "/var/log/q",
            "folder /var/log/q does not exist",
        ),
        (
            props(status=226, ReadWritePaths=["/var/lib/q", "-/var/lib/optional"]),
            [],
            "namespace-path-missing",
            "/var/lib/q",
            "ReadWritePaths= target /var/lib/q",
        ),
        (props(status=226), [], "sandbox-denied", "ProtectSystem", "mount namespace"),
        (props(status=218), [], "sandbox-denied", "CapabilityBoundingSet", "capability"),
        (
            props(status=243, LoadCredential=[("tok", "/etc/q/tok")]),
            [],
            "credential-missing",
            "/etc/q/tok",
            "the LoadCredential source of tok",
        ),
        (
            props("resources", 0, 0, EnvironmentFiles=[("/etc/q/a.env", False)]),
            [],
            "env-file-missing",
            "/etc/q/a.env",
            "EnvironmentFile=/etc/q/a.env does not exist",
        ),
        (
            props("resources", 0, 0, EnvironmentFiles=[("/etc/q/a.env", True)]),
            [],
            "resources",
            "",
            "could not set it up",
        ),
        (pre(3), [], "control-process-failed", "ExecStartPre", "status 3/NOTIMPLEMENTED"),
        (
            {**pre(4, "ExecStartPost"), "ExecMainCode": KILLED, "ExecMainStatus": 15},
            [],
            "control-process-failed",
            "ExecStartPost",
            "was stopped",
        ),
        (
            props("signal", KILLED, 31, SystemCallFilter=(False, ["socket"])),
            [],
            "sandbox-denied",
            "SystemCallFilter=~socket",
            "signal 31/SIGSYS",
        ),
        (
            props(status=2),
            ["python3: can't open file '/opt/q/microservices/x/main.py': [Errno 2] No such file"],
            "script-missing",
            "/opt/q/microservices/x/main.py",
            "likely at /srv/code/microservices/x/main.py",
        ),
        (
            props(status=2),
            ["python3: can't open file '/srv/code/microservices/x/main.py\r': [Errno 2] No such"],
            "bad-interpreter",
            "",
            "the file name ends in \\r",
        ),
        (
            props(ProtectSystem="strict"),
            [*TRACE, "OSError: [Errno 30] Read-only file system: '/var/lib/q/state'"],
            "sandbox-denied",
            "ProtectSystem=",
            "add ReadWritePaths=/var/lib/q/state",
        ),
        (
            props(ProtectSystem="strict", ReadWritePaths=["/var/lib/q"]),
            [*TRACE, "OSError: [Errno 30] Read-only file system: '/var/lib/q/state'"],
            "python-exception",
            "",
            "OSError",
        ),
        (
            props(),
            [*TRACE, "PermissionError: [Errno 13] Permission denied: '/home/q/x'"],
            "python-exception",
            "",
            "PermissionError",
        ),
    ],
)
def test_setup_steps_name_what_is_missing(
    unit: dict[str, object], lines: list[str], kind: str, missing: str, summary: str
) -> None:
    cause = classify(unit, lines, roots=("/srv/code",), exists=on_disk)
    assert (cause.kind, cause.summary) == (kind, cause.summary)
    assert missing in cause.missing and summary in cause.summary, cause


def test_a_start_limit_is_transient_only_when_its_cause_is() -> None:
    limit = ["Start request repeated too quickly."]
    chdir = classify(props(status=200, WorkingDirectory="/nope"), limit, exists=on_disk)
    assert (chdir.kind, chdir.underlying, chdir.transient) == (
        "start-limit-hit",
        "workdir-missing",
        False,
    )
    killed = classify(props("signal", KILLED, 15), limit)
    assert (killed.underlying, killed.transient) == ("signal", True)
