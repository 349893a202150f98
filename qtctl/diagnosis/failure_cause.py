"""Why did a unit die? Classify from its properties, its journal since its last start, and files."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

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
TRANSIENT = frozenset(
    {"redis-unreachable", "timeout", "oom-kill", "signal", "dependency", "start-limit-hit"}
)

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


@dataclass(frozen=True)
class ExecProbe:
    """What the file system says about the unit's ExecStart program."""

    path: str
    exists: bool
    executable: bool
    shebang_cr: bool = False
    bom: bool = False
    body_crlf: bool = False
    missing_interpreter: str = ""


@dataclass(frozen=True)
class Cause:
    """A failure class from the user contract and the evidence in words."""

    kind: str
    summary: str

    @property
    def transient(self) -> bool:
        """Whether a restart alone may cure it."""
        return self.kind in TRANSIENT


def classify(
    props: Mapping[str, Any],
    lines: Sequence[str],
    probe: ExecProbe | None = None,
    oom_killed: bool = False,
) -> Cause:
    """The most specific cause the evidence supports, in a fixed order of precedence."""
    result = str(props.get("Result", ""))
    if result == "start-limit-hit" or any(START_LIMIT in line for line in lines):
        burst, interval = props.get("StartLimitBurst", 0), props.get("StartLimitIntervalUSec", 0)
        inner = _from_exit(props, lines, probe, oom_killed)
        return Cause(
            "start-limit-hit",
            f"restarted {burst} times within {int(interval) // 1_000_000} s and hit its start "
            f"limit; last failure: {inner.kind}: {inner.summary}",
        )
    if result == "dependency":
        return Cause("dependency", "a unit it requires failed to start")
    return _from_exit(props, lines, probe, oom_killed)


def _from_exit(
    props: Mapping[str, Any], lines: Sequence[str], probe: ExecProbe | None, oom_killed: bool
) -> Cause:
    result = str(props.get("Result", ""))
    code, status = int(props.get("ExecMainCode", 0) or 0), int(props.get("ExecMainStatus", 0) or 0)
    if result == "oom-kill" or (oom_killed and code == CLD_KILLED and status == 9):
        return Cause("oom-kill", f"killed by the kernel OOM killer ({_memory_limit(props)})")
    if result == "timeout":
        return Cause("timeout", "did not finish starting or stopping within its timeout")
    if result == "resources":
        evidence = next((line for line in lines if "Failed to load environment" in line), "")
        evidence = evidence or next((line for line in lines if "Failed to" in line), "")
        what = f": {evidence.strip()}" if evidence else ""
        return Cause("resources", f"systemd could not set it up to start{what}")
    if code == CLD_EXITED and status in (203, 217):
        return _exec_failure(status, props, probe, lines)
    cause = _from_journal(lines, probe)
    if cause:
        return cause
    if result == "core-dump" or code == CLD_DUMPED:
        return Cause("core-dump", f"dumped core on signal {_signal(status)}")
    if result == "signal" or code == CLD_KILLED:
        return Cause("signal", f"killed by signal {_signal(status)}")
    if any("Dependency failed for" in line for line in lines):
        return Cause("dependency", "a unit it requires failed to start")
    return Cause("exit-code", f"exited with status {_status(status)}")


def _exec_failure(
    status: int, props: Mapping[str, Any], probe: ExecProbe | None, lines: Sequence[str]
) -> Cause:
    if status == 217:
        return Cause("bad-user", f"User={props.get('User') or '?'} does not exist on this host")
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
    evidence = next((line for line in lines if "Failed to" in line and "exec" in line.lower()), "")
    return Cause(
        "exec-not-found", f"{path} does not exist" + (f" ({evidence})" if evidence else "")
    )


def _from_journal(lines: Sequence[str], probe: ExecProbe | None) -> Cause | None:
    # Binary junk in a log can hold a stray \r: a bare \r counts only when the script has CRLF.
    crlf_script = probe is not None and probe.body_crlf
    shell_says = any(any(mark in line for mark in CR_EVIDENCE) for line in lines)
    # tools quote a stray CR themselves: sleep says '3600\r' with a literal backslash
    cr_seen = any("\r" in line or "\\r" in line for line in lines)
    if shell_says or (crlf_script and cr_seen):
        where = f"{probe.path} has CRLF line endings" if probe and crlf_script else "CRLF script"
        return Cause("bad-interpreter", f"{where}: the shell sees commands ending in \\r")
    return _from_traceback(lines)


def _from_traceback(lines: Sequence[str]) -> Cause | None:
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
