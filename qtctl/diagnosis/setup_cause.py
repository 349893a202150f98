"""Failures before the service's own code ran: systemd's setup steps, control processes, and
the sandbox a unit's hardening builds, each naming what is missing or which directive denies.

Evidence: the exit status systemd gives the main process when a setup step fails
(systemd.exec(5) "Process Exit Codes", e.g. 200/CHDIR), the unit's properties (the
WorkingDirectory, the append: log file, ReadWritePaths=, LoadCredential=, EnvironmentFile=,
ExecStartPre=/ExecStartPost= with their exit statuses), the journal lines of the failed run,
and whether the named path exists.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from qtctl.diagnosis.cause import Cause
from qtctl.diagnosis.ghost_paths import likely_location, missing_ancestor

Exists = Callable[[str], bool]
CLD_EXITED, CLD_KILLED = 1, 2
SIGSYS = 31
FILE_OUTPUTS = ("file", "append", "truncate")
NAMESPACE_PATH = re.compile(r"/run/systemd/unit-root(/\S*?):? No such file or directory")
EXIT_NAMES = {1: "FAILURE", 2: "INVALIDARGUMENT", 3: "NOTIMPLEMENTED", 4: "NOPERMISSION"}
EXIT_NAMES.update({5: "NOTINSTALLED", 6: "NOTCONFIGURED", 7: "NOTRUNNING"})
ERRNO_DENIED = re.compile(r"\[Errno (1|13|30)\][^']*'(/[^']*)'")
SCRIPT_DENIED = re.compile(r"can't open file '(/[^']*)': \[Errno (1|13)\]")
HARDENING_HINT = {
    218: "CapabilityBoundingSet=/AmbientCapabilities= (a capability it cannot get)",
    228: "SystemCallFilter=/SystemCallArchitectures= (the seccomp filter could not be set up)",
    226: "ProtectSystem=/ProtectHome=/PrivateTmp=/ReadWritePaths= (the mount namespace)",
    227: "NoNewPrivileges=",
}


def _path(value: object) -> str:
    """A path property without systemd's `-` (optional) / `+` / `!` prefixes."""
    return str(value or "").lstrip("-+!:")


def workdir(props: Mapping[str, Any], roots: Sequence[str], exists: Exists) -> Cause:
    """200/CHDIR: the WorkingDirectory is missing (and maybe where it really is)."""
    path = _path(props.get("WorkingDirectory"))
    if not path or path == "~":
        return Cause("workdir-missing", "could not change to its WorkingDirectory (200/CHDIR)")
    likely = likely_location(path, roots, exists)
    where = f"; the code is likely at {likely}" if likely else ""
    return Cause(
        "workdir-missing",
        f"WorkingDirectory={path} does not exist (200/CHDIR){where}",
        missing=path,
        likely=likely,
    )


def log_dir(props: Mapping[str, Any], exists: Exists) -> Cause:
    """209/STDOUT: `StandardOutput=append:FILE` (or file:/truncate:) into a missing folder."""
    for stream in ("Output", "Error"):
        kind = str(props.get(f"Standard{stream}") or "")
        target = str(props.get(f"Standard{stream}FileDescriptorName") or "")
        if kind in FILE_OUTPUTS and target.startswith("/"):
            folder = missing_ancestor(target.rsplit("/", 1)[0] or "/", exists)
            if folder:
                return Cause(
                    "log-dir-missing",
                    f"Standard{stream}={kind}:{target}: folder {folder} does not exist "
                    "(209/STDOUT)",
                    missing=folder,
                )
    return Cause("log-dir-missing", "systemd could not set up its standard output (209/STDOUT)")


def namespace(props: Mapping[str, Any], lines: Sequence[str], exists: Exists) -> Cause:
    """226/NAMESPACE: a ReadWritePaths=/ReadOnlyPaths= target that does not exist, else the
    mount namespace the hardening asks for could not be built."""
    named = [m.group(1) for m in map(NAMESPACE_PATH.search, lines) if m]
    listed = [
        _path(p)
        for key in ("ReadWritePaths", "ReadOnlyPaths", "InaccessiblePaths")
        for p in props.get(key) or []
        if not str(p).startswith("-")
    ]
    missing = next((p for p in [*named, *listed] if p and not exists(p)), "")
    if missing:
        key = next(
            (
                k
                for k in ("ReadWritePaths", "ReadOnlyPaths")
                if missing in map(_path, props.get(k) or [])
            ),
            "a path setting",
        )
        return Cause(
            "namespace-path-missing",
            f"{key}= target {missing} does not exist (226/NAMESPACE): create it or prefix it "
            "with '-'",
            missing=missing,
        )
    return denied(226)


def credentials(props: Mapping[str, Any], exists: Exists) -> Cause:
    """243/CREDENTIALS: a LoadCredential= source that does not exist."""
    for name, source in props.get("LoadCredential") or []:
        path = str(source)
        if path.startswith("/") and not exists(path):
            return Cause(
                "credential-missing",
                f"{path} does not exist: the LoadCredential source of {name} (243/CREDENTIALS)",
                missing=path,
            )
    return Cause("credential-missing", "systemd could not set up its credentials (243/CREDENTIALS)")


def resources(props: Mapping[str, Any], lines: Sequence[str], exists: Exists) -> Cause:
    """Result=resources: a missing EnvironmentFile=, else what systemd said it failed to do."""
    for path, optional in props.get("EnvironmentFiles") or []:
        if not optional and not exists(str(path)):
            return Cause(
                "env-file-missing",
                f"EnvironmentFile={path} does not exist: systemd refuses to start it",
                missing=str(path),
            )
    evidence = next((line for line in lines if "Failed to load environment" in line), "")
    evidence = evidence or next((line for line in lines if "Failed to" in line), "")
    what = f": {evidence.strip()}" if evidence else ""
    return Cause("resources", f"systemd could not set it up to start{what}")


def control_process(props: Mapping[str, Any]) -> Cause | None:
    """An ExecStartPre=/ExecStartPost= command that failed (the main one never ran, or was
    stopped because of it): `exited with status 0` said nothing."""
    for key in ("ExecStartPre", "ExecStartPost"):
        for command in props.get(key) or []:
            path, argv, ignore, code, status = (
                command[0],
                command[1],
                command[2],
                command[8],
                command[9],
            )
            failed = (code == CLD_EXITED and status != 0) or code not in (0, CLD_EXITED)
            if failed and not ignore:
                shown = " ".join(str(a) for a in argv) or str(path)
                how = (
                    f"status {status}/{EXIT_NAMES.get(status, status)}"
                    if code == CLD_EXITED
                    else (f"signal {status}")
                )
                return Cause(
                    "control-process-failed",
                    f"{key}={shown} failed ({how}); the main process "
                    + ("never ran" if key == "ExecStartPre" else "was stopped"),
                    missing=key,
                )
    return None


def denied(status: int, directive: str = "") -> Cause:
    """A sandbox setup step (or the seccomp filter) refused the process: name what to relax."""
    hint = directive or HARDENING_HINT.get(status, "the unit's hardening directives")
    step = f"status {status}" if status != SIGSYS else "signal 31/SIGSYS"
    return Cause(
        "sandbox-denied",
        f"the unit's sandbox denied it ({step}): relax {hint}",
        missing=hint.split(" ", 1)[0],
    )


def seccomp(props: Mapping[str, Any]) -> Cause:
    """Killed by SIGSYS: a system call outside SystemCallFilter=."""
    allow, calls = props.get("SystemCallFilter") or (True, [])
    shown = ("" if allow else "~") + " ".join(sorted(str(c) for c in calls)[:6])
    filt = f"SystemCallFilter={shown.strip()}" if calls else "SystemCallFilter="
    return denied(SIGSYS, f"{filt} (it made a system call the filter forbids)")


def hardening_errno(props: Mapping[str, Any], text: str) -> Cause | None:
    """EROFS/EACCES/EPERM on a path the unit's own ProtectSystem=/ProtectHome=/ReadOnlyPaths=/
    InaccessiblePaths= hides or makes read-only: the directive to relax, with the path."""
    match = ERRNO_DENIED.search(text)
    if not match:
        return None
    errno, path = int(match.group(1)), match.group(2)
    directive = _hiding_directive(props, errno, path)
    if not directive:
        return None
    key = directive.split("=", 1)[0]
    # under ProtectHome=yes a ReadWritePaths= below /home stays out of reach (checked in the
    # sandbox: /home itself is inaccessible); a bind mount into ProtectHome=tmpfs is not
    remedy = (
        f"bind it back in with ProtectHome=tmpfs and BindReadOnlyPaths={path} (BindPaths= to "
        f"write it), or relax {key}="
        if key == "ProtectHome" and not directive.endswith(("=tmpfs", "=read-only"))
        else f"add ReadWritePaths={path} or relax {key}="
    )
    return Cause(
        "sandbox-denied",
        f"{directive} denies {path} ([Errno {errno}]): {remedy}",
        missing=key + "=",
    )


def script_denied(props: Mapping[str, Any], lines: Sequence[str]) -> Cause | None:
    """python could not open its own script (`can't open file 'PATH': [Errno 13]`, no
    traceback) because the unit's ProtectHome=/InaccessiblePaths= hides it."""
    match = next((m for m in map(SCRIPT_DENIED.search, lines) if m), None)
    if not match:
        return None
    path, errno = match.group(1), int(match.group(2))
    return hardening_errno(props, f"[Errno {errno}] Permission denied: '{path}'")


def _hiding_directive(props: Mapping[str, Any], errno: int, path: str) -> str:
    def under(prefixes: Sequence[str]) -> bool:
        return any(path == p or path.startswith(p.rstrip("/") + "/") for p in prefixes if p)

    if under([_path(p) for p in props.get("ReadWritePaths") or []]):
        return ""
    system = str(props.get("ProtectSystem") or "no")
    if errno == 30 and system == "strict" and not under(["/dev", "/proc", "/sys"]):
        return "ProtectSystem=strict"
    if errno == 30 and system in ("yes", "full") and under(["/usr", "/boot", "/efi", "/etc"]):
        return f"ProtectSystem={system}"
    home = str(props.get("ProtectHome") or "no")
    if home != "no" and under(["/home", "/root", "/run/user"]):
        return f"ProtectHome={home}"
    for key in ("ReadOnlyPaths", "InaccessiblePaths"):
        hit = next((p for p in map(_path, props.get(key) or []) if under([p])), "")
        if hit:
            return f"{key}={hit}"
    return ""
