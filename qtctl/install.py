"""`qtctl install` / `qtctl uninstall`: render the shipped unit templates and put them in place.

Rendering fills the real venv, user and config paths into `units/*.service|timer`. Writing is
atomic (temp file and rename) and idempotent: an unchanged unit is left alone, a changed one is
shown as a diff first. With `--root DIR` the units go to a staging tree (packaging) and systemd is
not touched; otherwise `daemon-reload`, then `enable` and `start` unless `--no-start`.
"""

from __future__ import annotations

import difflib
import os
import re
import sys
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from qtctl.adapters import safe_files
from qtctl.errors import UsageError

UNIT_DIR = "etc/systemd/system"
MAX_UNIT_BYTES = 1 << 20  # systemd itself refuses unit files this large
STATE_DIR = "/var/lib/qtctl-report"  # StateDirectory= of qtctl-report.service
DAEMON_UNITS = {
    "bridge": "qtctl-bridge.service",
    "risk-kernel": "qtctl-risk-kernel.service",
    "rl-agent": "qtctl-rl-agent.service",
}
REPORT_UNITS = ("qtctl-report.service", "qtctl-report.timer")
NOTIFY_UNIT = "qtctl-notify@.service"  # `--on-failure`: the OnFailure= handler template


@dataclass(frozen=True)
class InstallOptions:
    """What to install, where, and with which paths filled in."""

    daemons: tuple[str, ...] = ()
    report_timer: bool = False
    on_failure: bool = False
    every: str = "5min"
    root: str = "/"
    user: str = "qtctl"  # created as a system user when missing
    dynamic_user: bool = False
    venv: str = sys.prefix
    config_file: str | None = None
    report_output: str = "/var/lib/qtctl-report/qtctl.prom"  # the unit's StateDirectory
    watchdog_sec: int = 30
    start: bool = True

    @property
    def staging(self) -> bool:
        """Writing into a staging tree: never talk to systemd. Decided from the path as given,
        never by resolving it: a staging folder someone swaps for a link to / stays staging."""
        return os.path.normpath(self.root) not in ("/", "//")


@dataclass(frozen=True)
class UnitFile:
    """One rendered unit and what is installed at its path now."""

    name: str
    path: Path
    content: str
    installed: str | None

    @property
    def state(self) -> str:
        """new | changed | unchanged."""
        if self.installed is None:
            return "new"
        return "unchanged" if self.installed == self.content else "changed"

    def diff(self) -> str:
        """A unified diff against the installed file (empty when unchanged)."""
        old = (self.installed or "").splitlines(keepends=True)
        new = self.content.splitlines(keepends=True)
        label = str(self.path)
        return "".join(difflib.unified_diff(old, new, f"{label} (installed)", label))


def unit_names(options: InstallOptions) -> list[str]:
    """The unit files the options select, validated."""
    unknown = [d for d in options.daemons if d not in DAEMON_UNITS]
    if unknown:
        known = ", ".join(sorted(DAEMON_UNITS))
        raise UsageError(f"no unit for {', '.join(unknown)}; installable daemons: {known}")
    names = [DAEMON_UNITS[d] for d in options.daemons]
    if options.report_timer:
        names += list(REPORT_UNITS)
    if options.on_failure:
        names.append(NOTIFY_UNIT)
    if not names:
        raise UsageError("name daemons to install, or --all, --report-timer or --on-failure")
    return names


def render(name: str, options: InstallOptions) -> str:
    """A template with the install's paths filled in (every placeholder must be known)."""
    template = resources.files("qtctl.units").joinpath(name).read_text(encoding="utf-8")
    venv = Path(options.venv)
    if not (venv / "bin" / "qtctl").exists():
        raise UsageError(f"--venv {venv}: no bin/qtctl there (pass the venv qtctl is installed in)")
    user = options.user
    user_lines = "DynamicUser=yes" if options.dynamic_user else f"User={user}\nGroup={user}"
    output = Path(options.report_output)
    values = {
        "@VENV@": str(venv),
        "@USER_LINES@": user_lines,
        "@CONFIG@": options.config_file or "/etc/qtctl/qtctl.toml",
        "@WATCHDOG_SEC@": str(options.watchdog_sec),
        "@EVERY@": options.every,
        "@REPORT_OUTPUT@": str(output),
        "@TMP_BINDS@": _tmp_binds(venv),
        "@REPORT_PATHS@": (
            "" if output.parent == Path(STATE_DIR) else f"ReadWritePaths={output.parent}"
        ),
    }
    lines: list[str] = []
    for line in template.splitlines():
        if line.startswith("# Rendered by"):
            continue
        if line.startswith("Environment=QTCTL_CONFIG=") and not options.config_file:
            line = line.replace("QTCTL_CONFIG=@CONFIG@ ", "")  # doctor's default file applies
        placeholder = line.strip() in values
        for key, value in values.items():
            line = line.replace(key, value)
        if line or not placeholder:  # a placeholder that renders empty leaves no blank line
            lines.append(line)
    text = "\n".join(lines) + "\n"
    unknown = re.findall(r"@[A-Z_]+@", text)
    if unknown:
        raise UsageError(f"template {name} has unknown placeholder(s): {', '.join(unknown)}")
    return text


def _tmp_binds(venv: Path) -> str:
    """PrivateTmp=yes hides /tmp from the service: bind a venv or source tree living there."""
    import qtctl

    roots = {venv.resolve(), Path(qtctl.__file__).resolve().parents[1]}
    hidden = sorted(
        str(p) for p in roots if p.is_relative_to("/tmp") or p.is_relative_to("/var/tmp")
    )
    return "\n".join(f"BindReadOnlyPaths={p}" for p in hidden)


def plan(options: InstallOptions) -> list[UnitFile]:
    """Every selected unit rendered, with what is installed now."""
    folder = Path(options.root) / UNIT_DIR
    units = []
    for name in unit_names(options):
        path = folder / name
        units.append(UnitFile(name, path, render(name, options), _installed(path)))
    return units


def _installed(path: Path) -> str | None:
    """The unit file there now, read without following a planted link (nor blocking on a FIFO,
    nor reading without end); None when there is none."""
    if not os.path.lexists(path):
        return None
    try:
        data = safe_files.read_file(str(path.absolute()), MAX_UNIT_BYTES)[0]
    except safe_files.UnsafePath as exc:
        raise UsageError(f"not installing over {path}: {exc}") from None
    return data.decode("utf-8", errors="replace")


def write(units: list[UnitFile]) -> list[UnitFile]:
    """Write new and changed units atomically; returns the ones written."""
    written = []
    for unit in units:
        if unit.state == "unchanged":
            continue
        # Through the folder's fd, temp file O_EXCL|O_NOFOLLOW: a staging tree another user can
        # write cannot redirect the write through a planted symlink.
        safe_files.write_file(str(unit.path.absolute()), unit.content.encode("utf-8"), 0o644)
        written.append(unit)
    return written


def activate(units: list[UnitFile], written: list[UnitFile], options: InstallOptions) -> list[str]:
    """daemon-reload when something changed, then enable and start; returns what was done."""
    from qtctl.adapters.systemd import SystemdAdapter
    from qtctl.config import SystemdSettings

    done: list[str] = ensure_user(options)
    systemd = SystemdAdapter.connect(SystemdSettings())
    try:
        if written:
            systemd.daemon_reload()
            done.append("systemctl daemon-reload")
        if not options.start:
            return done
        starters = [
            u.name for u in units if u.name != "qtctl-report.service" and "@." not in u.name
        ]
        if not starters:
            return done
        systemd.enable(starters)
        done.append(f"systemctl enable {' '.join(starters)}")
        for name in starters:
            if name in [u.name for u in written] and systemd.unit_state(name) == "active":
                systemd.restart(name)
                done.append(f"systemctl restart {name}")
            elif systemd.unit_state(name) != "active":
                systemd.start(name)
                done.append(f"systemctl start {name}")
    finally:
        systemd.close()
    return done


def ensure_user(options: InstallOptions) -> list[str]:
    """Create the dedicated system user the units run as, if it does not exist yet."""
    import pwd
    import subprocess

    if options.dynamic_user:
        return []
    try:
        pwd.getpwnam(options.user)
        return []
    except KeyError:
        pass
    argv = ["useradd", "--system", "--user-group", "--no-create-home"]
    argv += ["--shell", "/usr/sbin/nologin", options.user]
    res = subprocess.run(argv, capture_output=True, text=True)
    if res.returncode != 0:
        raise UsageError(f"cannot create user {options.user}: {res.stderr.strip()}")
    return [" ".join(argv)]


def uninstall(options: InstallOptions) -> list[str]:
    """Stop, disable and remove the selected units qtctl installed; returns what was done."""
    folder = Path(options.root) / UNIT_DIR
    present = [n for n in unit_names(options) if os.path.lexists(folder / n)]
    done: list[str] = []
    if not present:
        return done
    if not options.staging:
        from qtctl.adapters.systemd import SystemdAdapter
        from qtctl.config import SystemdSettings

        systemd = SystemdAdapter.connect(SystemdSettings())
        try:
            for name in present:
                systemd.stop(name)
                done.append(f"systemctl stop {name}")
            systemd.disable(present)
            done.append(f"systemctl disable {' '.join(present)}")
        finally:
            systemd.close()
    for name in present:
        with safe_files.parent_of(str((folder / name).absolute())) as (parent, base):
            os.unlink(base, dir_fd=parent)
        done.append(f"rm {folder / name}")
    if not options.staging:
        systemd = SystemdAdapter.connect(SystemdSettings())
        try:
            systemd.daemon_reload()
        finally:
            systemd.close()
        done.append("systemctl daemon-reload")
    return done
