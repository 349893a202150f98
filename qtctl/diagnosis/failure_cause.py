"""Why did a unit die? Classify from its properties, its journal since its last start, and files."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from typing import Any

from qtctl.diagnosis import setup_cause, stale_evidence
from qtctl.diagnosis.cause import TRANSIENT, Cause, ExecProbe
from qtctl.diagnosis.ghost_paths import likely_location
from qtctl.diagnosis.setup_cause import Exists

# systemd's own exit statuses (systemd.exec(5), "Process Exit Codes").
SYSTEMD_STATUS = {
    200: "CHDIR",
    203: "EXEC",
    204: "MEMORY",
    206: "OOM_ADJUST",
    209: "STDOUT",
    210: "CHROOT",
    214: "SETSCHEDULER",
    216: "GROUP",
    217: "USER",
    218: "CAPABILITIES",
    226: "NAMESPACE",
    227: "NO_NEW_PRIVILEGES",
    228: "SECCOMP",
    233: "RUNTIME_DIRECTORY",
    236: "STATE_DIRECTORY",
    243: "CREDENTIALS",
}
SIGNALS = {1: "HUP", 2: "INT", 3: "QUIT", 4: "ILL", 6: "ABRT", 7: "BUS", 8: "FPE", 9: "KILL"}
SIGNALS.update({11: "SEGV", 13: "PIPE", 14: "ALRM", 15: "TERM"})
CLD_EXITED, CLD_KILLED, CLD_DUMPED = 1, 2, 3
__all__ = ["TRANSIENT", "Cause", "ExecProbe", "classify", "missing_module"]
SCRIPT_MISSING = re.compile(r"can't open file '([^']+)': \[Errno 2\]")

FRAME = re.compile(r'^\s*File "(?P<file>[^"]+)", line (?P<line>\d+), in (?P<func>.+)$')
EXCEPTION = re.compile(
    r"^(?P<name>[A-Za-z_][\w.]*(?:Error|Exception|Exit|Interrupt|Warning))"
    r"(?::\s*(?P<text>.*))?$"
)
MISSING_MODULE = re.compile(r"No module named '([^']+)'")
CANNOT_IMPORT = re.compile(r"cannot import name '([^']+)' from '([^']+)'")
START_LIMIT = "Start request repeated too quickly"
CR_EVIDENCE = ("$'\\r'", "\r: command not found", "^M", "bad interpreter")
REDIS_EVIDENCE = re.compile(
    r"(redis\.exceptions\.(ConnectionError|TimeoutError)|Error \d+ connecting to|"
    r"Connection refused.*6379|6379.*Connection refused|Timeout connecting to server)"
)


def classify(
    props: Mapping[str, Any],
    lines: Sequence[str],
    probe: ExecProbe | None = None,
    oom_killed: bool = False,
    roots: Sequence[str] = (),
    exists: Exists = os.path.lexists,
) -> Cause:
    """The most specific cause the evidence supports, in a fixed order of precedence.

    `roots` are the code roots a ghost path's real copy is looked for under; `exists` is the
    file-system probe (a seam for the pure tests). Evidence about a file that changed after
    the failed run exited is stale: the cause is then `changed-since-failure`."""
    cause = _classify(props, lines, probe, oom_killed, roots, exists)
    return stale_evidence.stale(cause, props, lines, probe)


def _classify(
    props: Mapping[str, Any],
    lines: Sequence[str],
    probe: ExecProbe | None,
    oom_killed: bool,
    roots: Sequence[str],
    exists: Exists,
) -> Cause:
    result = str(props.get("Result", ""))
    if result == "start-limit-hit" or any(START_LIMIT in line for line in lines):
        burst, interval = props.get("StartLimitBurst", 0), props.get("StartLimitIntervalUSec", 0)
        inner = _from_exit(props, lines, probe, oom_killed, roots, exists)
        return Cause(
            "start-limit-hit",
            f"restarted {burst} times within {int(interval) // 1_000_000} s and hit its start "
            f"limit; last failure: {inner.kind}: {inner.summary}",
            missing=inner.missing,
            likely=inner.likely,
            underlying=inner.kind,
        )
    if result == "dependency":
        return Cause("dependency-down", "a unit it requires failed to start")
    return _from_exit(props, lines, probe, oom_killed, roots, exists)


def _from_exit(
    props: Mapping[str, Any],
    lines: Sequence[str],
    probe: ExecProbe | None,
    oom_killed: bool,
    roots: Sequence[str],
    exists: Exists,
) -> Cause:
    result = str(props.get("Result", ""))
    code, status = int(props.get("ExecMainCode", 0) or 0), int(props.get("ExecMainStatus", 0) or 0)
    if result == "oom-kill" or (oom_killed and code == CLD_KILLED and status == 9):
        return Cause("oom-kill", f"killed by the kernel OOM killer ({_memory_limit(props)})")
    if result == "timeout":
        return Cause("timeout", "did not finish starting or stopping within its timeout")
    if result == "resources":
        return setup_cause.resources(props, lines, exists)
    control = setup_cause.control_process(props)
    if control:
        return control
    if code == CLD_EXITED and status in SYSTEMD_STATUS:
        return _setup_step(status, props, probe, lines, roots, exists)
    if code in (CLD_KILLED, CLD_DUMPED) and status == setup_cause.SIGSYS:
        return setup_cause.seccomp(props)
    cause = _from_journal(lines, probe, props, roots, exists)
    if cause:
        return cause
    if result == "core-dump" or code == CLD_DUMPED:
        return Cause("core-dump", f"dumped core on signal {_signal(status)}")
    if result == "signal" or code == CLD_KILLED:
        return Cause("signal", f"killed by signal {_signal(status)}")
    if any("Dependency failed for" in line for line in lines):
        return Cause("dependency-down", "a unit it requires failed to start")
    return Cause("exit-code", f"exited with status {_status(status)}")


def _setup_step(
    status: int,
    props: Mapping[str, Any],
    probe: ExecProbe | None,
    lines: Sequence[str],
    roots: Sequence[str],
    exists: Exists,
) -> Cause:
    """A setup step failed before the program ran (the status names the step)."""
    if status == 200:
        return setup_cause.workdir(props, roots, exists)
    if status in (203, 217):
        return _exec_failure(status, props, probe, lines, roots, exists)
    if status == 209:
        return setup_cause.log_dir(props, exists)
    if status == 226:
        return setup_cause.namespace(props, lines, exists)
    if status == 243:
        return setup_cause.credentials(props, exists)
    if status in setup_cause.HARDENING_HINT:
        return setup_cause.denied(status)
    step = SYSTEMD_STATUS[status]
    evidence = next((line for line in lines if f"step {step}" in line), "")
    what = f": {evidence.strip()}" if evidence else ""
    return Cause("setup-failed", f"systemd's setup step {status}/{step} failed{what}")


def _exec_failure(
    status: int,
    props: Mapping[str, Any],
    probe: ExecProbe | None,
    lines: Sequence[str],
    roots: Sequence[str],
    exists: Exists,
) -> Cause:
    if status == 217:
        user = props.get("User") or "?"
        return Cause("bad-user", f"User={user} does not exist on this host", missing=str(user))
    if probe and probe.exists and (probe.shebang_cr or probe.bom):
        what = "a UTF-8 BOM" if probe.bom else "CRLF line endings (#!...^M)"
        return Cause(
            "bad-interpreter",
            f"{probe.path} starts with {what}: the kernel cannot find the interpreter",
        )
    if probe and probe.exists and not probe.executable:
        return Cause("exec-not-found", f"{probe.path} is not executable (chmod +x)")
    if probe and probe.exists and probe.missing_interpreter:
        return Cause(
            "bad-interpreter",
            f"{probe.path}: shebang interpreter {probe.missing_interpreter} does not exist",
        )
    path = probe.path if probe else "the ExecStart program"
    likely = likely_location(path, roots, exists) if probe else ""
    evidence = next((line for line in lines if "Failed to" in line and "exec" in line.lower()), "")
    return Cause(
        "exec-not-found",
        f"{path} does not exist"
        + (f"; likely at {likely}" if likely else "")
        + (f" ({evidence})" if evidence else ""),
        missing=path if probe else "",
        likely=likely,
    )


def _script_missing(lines: Sequence[str], roots: Sequence[str], exists: Exists) -> Cause | None:
    """python could not open its script (`can't open file ... [Errno 2]`): a ghost path."""
    match = next((m for m in map(SCRIPT_MISSING.search, lines) if m), None)
    if not match:
        return None
    path = match.group(1)
    if path.endswith(("\r", "\\r")):  # a CRLF wrapper passed `main.py\r`: not a ghost path
        shown = path.removesuffix("\\r").removesuffix("\r")
        return Cause(
            "bad-interpreter",
            f"a CRLF line passed '{shown}\\r' to python: the file name ends in \\r",
        )
    likely = likely_location(path, roots, exists)
    where = f"; likely at {likely}" if likely else ""
    return Cause("script-missing", f"script {path} does not exist{where}", path, likely)


def _from_journal(
    lines: Sequence[str],
    probe: ExecProbe | None,
    props: Mapping[str, Any],
    roots: Sequence[str],
    exists: Exists,
) -> Cause | None:
    # Binary junk in a log can hold a stray \r: a bare \r counts only when the script has CRLF.
    crlf_script = probe is not None and probe.body_crlf
    shell_says = any(any(mark in line for mark in CR_EVIDENCE) for line in lines)
    # tools quote a stray CR themselves: sleep says '3600\r' with a literal backslash
    cr_seen = any("\r" in line or "\\r" in line for line in lines)
    if shell_says or (crlf_script and cr_seen):
        where = f"{probe.path} has CRLF line endings" if probe and crlf_script else "CRLF script"
        return Cause("bad-interpreter", f"{where}: the shell sees commands ending in \\r")
    return (
        _script_missing(lines, roots, exists)
        or setup_cause.script_denied(props, lines)
        or _from_traceback(lines, props)
    )


def _from_traceback(lines: Sequence[str], props: Mapping[str, Any]) -> Cause | None:
    start = max(
        (i for i, line in enumerate(lines) if "Traceback (most recent call" in line), default=-1
    )
    if start < 0:
        return None
    block = [line.rstrip() for line in lines[start:]]
    frames = [m for m in (FRAME.match(line) for line in block) if m]
    errors = [m for m in (EXCEPTION.match(line.strip()) for line in block) if m]
    if not errors:
        return None
    exc = errors[-1]
    name, text = exc.group("name"), (exc.group("text") or "").strip()
    missing = MISSING_MODULE.search(text) or CANNOT_IMPORT.search(text)
    if name.split(".")[-1] in ("ModuleNotFoundError", "ImportError") and missing:
        return Cause("import-error", f"{name}: {text}")
    denied = setup_cause.hardening_errno(props, text)
    if denied:
        return denied
    if REDIS_EVIDENCE.search("\n".join(block)):
        return Cause("redis-unreachable", f"cannot reach Redis: {name}: {text}")
    where = ""
    if frames:
        last = frames[-1]
        where = f" at {last.group('file')}:{last.group('line')} in {last.group('func')}"
    return Cause("python-exception", f"{name}: {text}{where}" if text else f"{name}{where}")


def missing_module(cause: Cause) -> str:
    """The module an import-error names, or ''."""
    match = MISSING_MODULE.search(cause.summary) or CANNOT_IMPORT.search(cause.summary)
    return match.group(1) if match else ""


def _status(status: int) -> str:
    return f"{status}/{SYSTEMD_STATUS[status]}" if status in SYSTEMD_STATUS else str(status)


def _signal(status: int) -> str:
    return f"{status}/SIG{SIGNALS[status]}" if status in SIGNALS else str(status)


def _memory_limit(props: Mapping[str, Any]) -> str:
    limit = int(props.get("MemoryMax", 2**64 - 1) or 2**64 - 1)
    if limit >= 2**63:
        return "no MemoryMax set: the host ran out of memory"
    return f"MemoryMax={limit // 2**20}M"
