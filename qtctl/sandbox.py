"""A real systemd as PID 1 of namespaces on a copy-on-write overlay of /, for tests and the demo.

Safety: the box has its own pid, mount, network, uts and ipc namespaces; everything it writes lands
in a tmpfs that dies with it; it is torn down by SIGKILL to its own PID 1 (plus unshare's
--kill-child as a safety net), never by name. Commands reach it only through nsenter into its
root, after its PID 1 is verified to be systemd.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from qtctl.errors import SandboxError

log = logging.getLogger(__name__)

TARGET = "sandbox-default.target"
SYSTEMD = "/lib/systemd/systemd"
MASKED_ROOTS = ("/tmp/", "/run/")


@dataclass(frozen=True)
class BoxFile:
    """A file to place in the box before boot."""

    content: bytes | str
    mode: int = 0o644


@dataclass(frozen=True)
class SandboxSpec:
    """What the box contains: units, files, links, and which units its target pulls in."""

    units: Mapping[str, str] = field(default_factory=dict)
    files: Mapping[str, BoxFile | str | bytes] = field(default_factory=dict)
    symlinks: Mapping[str, str] = field(default_factory=dict)
    wants: Sequence[str] = ()
    dbus: bool = True
    binds: Sequence[str] = ()
    with_qtctl: bool = True


def preflight() -> str | None:
    """Why a sandbox cannot be booted here, or None when it can."""
    if os.geteuid() != 0:
        return "the systemd sandbox needs root (namespaces and mounts)"
    for tool in ("unshare", "nsenter", "setsid"):
        if shutil.which(tool) is None:
            return f"`{tool}` (util-linux) is not installed"
    if not os.path.exists(SYSTEMD):
        return f"systemd is not installed ({SYSTEMD} missing)"
    return None


class Sandbox:
    """One booted box. Use as a context manager; `close()` is idempotent."""

    def __init__(self, spec: SandboxSpec) -> None:
        self.spec = spec
        self._proc: subprocess.Popen[bytes] | None = None
        self.pid = 0
        self.boot_seconds = 0.0

    def __enter__(self) -> Sandbox:
        """Boot the box, unless it is booted already (`with Sandbox(spec).boot() as box`)."""
        return self if self.pid else self.boot()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def boot(self, timeout: float = 20.0) -> Sandbox:
        """Boot the box and wait until systemd finished starting its target (once: booting a
        running box is an error, not a second systemd)."""
        if self.pid:
            raise SandboxError("the sandbox is already booted")
        problem = preflight()
        if problem:
            raise SandboxError(problem)
        started = time.monotonic()
        stage = Path(tempfile.mkdtemp(prefix="qtctl-sandbox-stage-"))
        try:
            _stage_tree(self.spec, stage)
            self._start(stage)
            atexit.register(self.close)
            self._wait_for_systemd(started + timeout)
            self._wait_ready(started + timeout)
        except BaseException:
            self.close()
            raise
        finally:
            shutil.rmtree(stage, ignore_errors=True)
        self.boot_seconds = time.monotonic() - started
        return self

    def _start(self, stage: Path) -> None:
        with resources.as_file(resources.files("qtctl") / "sandbox_boot.sh") as script:
            argv = ["unshare", "--pid", "--fork", "--kill-child=SIGKILL", "--mount", "--uts"]
            argv += ["--ipc", "--net", "--mount-proc", "bash", str(script), str(stage)]
            argv += _bind_paths(self.spec)
            self._proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                start_new_session=True,
            )

    def _wait_for_systemd(self, deadline: float) -> None:
        assert self._proc is not None
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                err = self._proc.stderr.read().decode(errors="replace") if self._proc.stderr else ""
                raise SandboxError(f"sandbox exited during boot: {err.strip() or 'no message'}")
            child = _only_child(self._proc.pid)
            if child and _comm(child) == "systemd":
                self.pid = child
                return
            time.sleep(0.01)
        raise SandboxError("systemd did not start in the sandbox in time")

    def _wait_ready(self, deadline: float) -> None:
        while time.monotonic() < deadline:
            left = max(1.0, deadline - time.monotonic())
            res = self.run("systemctl", "is-system-running", "--wait", timeout=left)
            state = res.stdout.strip()
            if state in ("running", "degraded"):
                return
            time.sleep(0.02)  # the bus may not be up yet: "offline" / "Failed to connect"
        raise SandboxError("the sandbox's systemd did not finish booting in time")

    def run(
        self,
        *argv: str,
        timeout: float = 60.0,
        env: Mapping[str, str] | None = None,
        input: str | None = None,
        check: bool = False,
    ) -> subprocess.CompletedProcess[str]:
        """Run a command inside the box (root, its mounts, its network) and capture its output."""
        if not self.pid:
            raise SandboxError("the sandbox is not running")
        full_env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
        full_env.update({"LANG": "C.UTF-8", "SYSTEMD_PAGER": "", "SYSTEMD_COLORS": "0"})
        full_env.update(env or {})
        cmd = ["nsenter", "-t", str(self.pid), "-a", "-r", "-w", "--", *argv]
        res = subprocess.run(
            cmd,
            capture_output=True,
            text=True,
            errors="replace",
            timeout=timeout,
            env=full_env,
            input=input,
        )
        if check and res.returncode != 0:
            raise SandboxError(f"{' '.join(argv)} exited {res.returncode}: {res.stderr.strip()}")
        return res

    def qtctl(
        self, *args: str, env: Mapping[str, str] | None = None, timeout: float = 120.0
    ) -> subprocess.CompletedProcess[str]:
        """Run this very qtctl (same interpreter and code) inside the box, as an operator would."""
        box_env = {"NO_COLOR": "1", "COLUMNS": "200"}
        return self.run(
            sys.executable, "-m", "qtctl", *args, env={**box_env, **(env or {})}, timeout=timeout
        )

    def systemctl(self, *args: str, check: bool = False) -> subprocess.CompletedProcess[str]:
        """`systemctl ARGS` inside the box."""
        return self.run("systemctl", "--no-pager", *args, check=check)

    def journal(self, unit: str) -> str:
        """The unit's whole journal inside the box, as `journalctl -u` prints it."""
        self.run("journalctl", "--sync")
        return self.run("journalctl", "--no-pager", "-o", "cat", "-u", unit).stdout

    def host_path(self, path: str) -> Path:
        """The box's `path` as seen from the host, through its PID 1's root."""
        return Path(f"/proc/{self.pid}/root") / path.lstrip("/")

    def write(self, path: str, content: bytes | str, mode: int = 0o644) -> None:
        """Write a file into the running box."""
        target = self.host_path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content.encode() if isinstance(content, str) else content)
        target.chmod(mode)

    @property
    def bus_address(self) -> str:
        """The box's system bus, reachable from the host."""
        return f"unix:path={self.host_path('/run/dbus/system_bus_socket')}"

    def wait_for(self, unit: str, states: Sequence[str], timeout: float = 15.0) -> str:
        """Poll until the unit's ActiveState is one of `states`; return the state reached."""
        deadline = time.monotonic() + timeout
        state = ""
        while time.monotonic() < deadline:
            state = self.systemctl("show", "-P", "ActiveState", unit).stdout.strip()
            if state in states:
                return state
            time.sleep(0.05)
        raise SandboxError(f"{unit} did not reach {'/'.join(states)} (last: {state or 'unknown'})")

    def detach(self) -> int:
        """Leave the box running (`qtctl demo --keep`); the caller now owns its PID 1."""
        atexit.unregister(self.close)
        pid, self.pid, self._proc = self.pid, 0, None
        return pid

    def close(self) -> None:
        """Kill the box's PID 1 (the whole pid namespace dies with it) and reap unshare."""
        proc, self._proc = self._proc, None
        if self.pid:
            _kill(self.pid)
            self.pid = 0
        if proc is not None:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                _kill(proc.pid)
                proc.wait(timeout=10)
            if proc.stderr:
                proc.stderr.close()
        atexit.unregister(self.close)


def _stage_tree(spec: SandboxSpec, stage: Path) -> None:
    # `cp -a stage/.` gives the box's / the stage's mode: mkdtemp's 0700 would lock out
    # every non-root service user (dbus's messagebus first).
    stage.chmod(0o755)
    unit_dir = stage / "etc/systemd/system"
    unit_dir.mkdir(parents=True)
    wants = (["dbus.service"] if spec.dbus else []) + list(spec.wants)
    target = f"[Unit]\nDescription=qtctl sandbox\nWants={' '.join(wants)}\n" if wants else ""
    (unit_dir / TARGET).write_text(target or "[Unit]\nDescription=qtctl sandbox\n")
    for name, text in spec.units.items():
        (unit_dir / name).write_text(text)
    for path, item in spec.files.items():
        box_file = item if isinstance(item, BoxFile) else BoxFile(item)
        dest = stage / path.lstrip("/")
        dest.parent.mkdir(parents=True, exist_ok=True)
        data = box_file.content
        dest.write_bytes(data.encode() if isinstance(data, str) else data)
        dest.chmod(box_file.mode)
    for path, link_target in spec.symlinks.items():
        dest = stage / path.lstrip("/")
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.symlink_to(link_target)


def _bind_paths(spec: SandboxSpec) -> list[str]:
    """Read-only binds: the spec's, plus what runs qtctl when it lives under /tmp or /run."""
    paths = [os.path.abspath(p) for p in spec.binds]
    if spec.with_qtctl:
        code = Path(__file__).resolve().parents[1]
        for path in (str(code), sys.prefix, sys.base_prefix):
            if path.startswith(MASKED_ROOTS) and path not in paths:
                paths.append(path)
    return paths


def _only_child(pid: int) -> int:
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return 0
    return int(children[0]) if children else 0


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def _kill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
