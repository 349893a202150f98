"""Unit-file mistakes the real fleet had that `systemd-analyze verify` misses or words badly."""

from __future__ import annotations

import os
import pwd
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass

from qtctl.diagnosis.unit_file import UNIT_DIRS, UnitFile, all_values, effective
from qtctl.engine.findings import Severity

UNIT_ONLY = frozenset(
    {
        "Description",
        "Documentation",
        "Requires",
        "Requisite",
        "Wants",
        "BindsTo",
        "PartOf",
        "Upholds",
        "Conflicts",
        "Before",
        "After",
        "OnFailure",
        "OnSuccess",
        "StartLimitIntervalSec",
        "StartLimitBurst",
        "StartLimitAction",
        "JobTimeoutSec",
        "DefaultDependencies",
        "RefuseManualStart",
        "RefuseManualStop",
        "AllowIsolate",
        "StopWhenUnneeded",
    }
)
INSTALL_ONLY = frozenset({"WantedBy", "RequiredBy", "Alias", "Also", "DefaultInstance"})
SERVICE_ONLY = frozenset(
    {
        "ExecStart",
        "ExecStartPre",
        "ExecStartPost",
        "ExecStop",
        "ExecReload",
        "Restart",
        "RestartSec",
        "Type",
        "User",
        "Group",
        "WorkingDirectory",
        "Environment",
        "EnvironmentFile",
        "TimeoutStartSec",
        "TimeoutStopSec",
        "WatchdogSec",
        "MemoryMax",
        "MemoryHigh",
        "CPUQuota",
        "RemainAfterExit",
        "KillMode",
        "PIDFile",
        "NotifyAccess",
    }
)
DEPRECATED = {
    "MemoryLimit": "MemoryMax=",
    "CPUShares": "CPUWeight=",
    "StartupCPUShares": "StartupCPUWeight=",
    "BlockIOWeight": "IOWeight=",
    "StartLimitInterval": "StartLimitIntervalSec= in [Unit]",
    "PermissionsStartOnly": "the + prefix on ExecStartPre=",
}
DEPENDENCIES = ("Requires", "Requisite", "Wants", "BindsTo", "PartOf", "After", "Before")
INLINE_COMMENT = re.compile(r"\s[#;]")
HIDING_HOME = ("yes", "true", "1", "tmpfs")  # read-only still lets the code be read
LONG_RUNNING = ("", "simple", "exec", "notify", "notify-reload", "dbus", "idle")


@dataclass(frozen=True)
class Problem:
    """One mistake in a unit's files."""

    severity: Severity
    kind: str
    where: str
    text: str

    def line(self) -> str:
        """A detail line: `where: text`."""
        return f"{self.where}: {self.text}" if self.where else self.text


@dataclass(frozen=True)
class UnitView:
    """What the rules look at: the unit's parsed files plus facts from systemd."""

    name: str
    files: tuple[UnitFile, ...]
    requires: tuple[str, ...]
    not_found: frozenset[str]
    aliases: Mapping[str, str]

    def value(self, key: str, section: str = "Service") -> str:
        """The effective value of a key."""
        return effective(self.files, section, key)


Rule = Callable[[UnitView], Iterator[Problem]]


def syntax(view: UnitView) -> Iterator[Problem]:
    """Lines systemd drops: unknown sections, assignments outside a section."""
    for unit_file in view.files:
        for number, text in unit_file.ignored:
            dropin = unit_file is not view.files[0]
            kind = "broken-drop-in" if dropin else "syntax"
            yield Problem(Severity.ERROR, kind, f"{unit_file.path}:{number}", text)


def wrong_section(view: UnitView) -> Iterator[Problem]:
    """Directives systemd silently ignores because they sit in the wrong section."""
    for unit_file in view.files:
        for d in unit_file.directives:
            home = _home_section(d.key)
            if home and home != d.section and d.section in ("Unit", "Service", "Install"):
                yield Problem(
                    Severity.ERROR,
                    "wrong-section",
                    d.where,
                    f"{d.key}= belongs in [{home}], not [{d.section}]: systemd ignores it there",
                )


def deprecated(view: UnitView) -> Iterator[Problem]:
    """Directives that are deprecated (and will stop working)."""
    for unit_file in view.files:
        for d in unit_file.directives:
            if d.key in DEPRECATED:
                yield Problem(
                    Severity.WARNING,
                    "deprecated",
                    d.where,
                    f"{d.key}= is deprecated: use {DEPRECATED[d.key]}",
                )


def inline_comments(view: UnitView) -> Iterator[Problem]:
    """`Key=value # note`: systemd has no inline comments, the note is part of the value."""
    for unit_file in view.files:
        for d in unit_file.directives:
            if INLINE_COMMENT.search(d.value) and not d.key.startswith("Exec"):
                yield Problem(
                    Severity.ERROR,
                    "inline-comment",
                    d.where,
                    f"{d.key}={d.value!r}: systemd has no inline comments; the value "
                    "is invalid or carries the comment as data",
                )


def missing_requirements(view: UnitView) -> Iterator[Problem]:
    """Requires= on units that do not exist: the unit fails to start."""
    for name in view.requires:
        if name in view.not_found:
            yield Problem(
                Severity.ERROR,
                "requires-missing",
                "",
                f"Requires={name}, which does not exist: starting this unit fails",
            )


def spelled_twice(view: UnitView) -> Iterator[Problem]:
    """The same dependency under several names (aliases), which hides what it depends on."""
    names: dict[str, set[str]] = {}
    for key in DEPENDENCIES:
        for d in all_values(view.files, "Unit", key):
            for name in d.value.split():
                names.setdefault(canonical(name, view.aliases), set()).add(name)
    for real, spellings in sorted(names.items()):
        if len(spellings) > 1:
            yield Problem(
                Severity.WARNING,
                "dependency-aliases",
                "",
                f"{real} is named {len(spellings)} ways: {', '.join(sorted(spellings))}",
            )


def runtime_mistakes(view: UnitView) -> Iterator[Problem]:
    """ProtectHome over code in /home, missing WorkingDirectory/User, bad PYTHONPATH."""
    exec_start = view.value("ExecStart")
    workdir = view.value("WorkingDirectory")
    protect = view.value("ProtectHome").lower()
    if protect in HIDING_HOME and "/home/" in f" {exec_start} {workdir}":
        yield Problem(
            Severity.ERROR,
            "protect-home",
            "",
            f"ProtectHome={protect} hides /home, where this service's code lives",
        )
    if workdir and not workdir.startswith(("-", "~")) and not os.path.isdir(workdir):
        yield Problem(
            Severity.ERROR, "working-directory", "", f"WorkingDirectory={workdir} does not exist"
        )
    user = view.value("User")
    if user and not user.isdigit() and not _user_exists(user):
        yield Problem(Severity.ERROR, "bad-user", "", f"User={user} does not exist on this host")
    for path in _pythonpath(view):
        if not os.path.isdir(path):
            yield Problem(
                Severity.ERROR, "pythonpath", "", f"PYTHONPATH entry {path} does not exist"
            )


def hardening(view: UnitView) -> Iterator[Problem]:
    """Long-running services without Restart=, Python as root, no resource limits."""
    if not view.name.endswith(".service") or not view.value("ExecStart"):
        return
    kind = view.value("Type")
    restart = view.value("Restart")
    if kind in LONG_RUNNING and restart in ("", "no"):
        yield Problem(
            Severity.WARNING,
            "no-restart",
            "",
            "no Restart=: if it dies it stays down (fix adds Restart=on-failure)",
        )
    program = view.value("ExecStart").lstrip("@-:+!").split()
    python = bool(program) and os.path.basename(program[0]).startswith("python")
    if python and view.value("User") in ("", "root", "0") and view.value("DynamicUser") != "yes":
        yield Problem(
            Severity.WARNING,
            "python-as-root",
            "",
            "Python service runs as root: set User= to a service account",
        )
    memory = any(view.value(k) for k in ("MemoryMax", "MemoryHigh", "MemoryLimit"))
    if not memory or not view.value("CPUQuota"):
        missing = [
            name
            for name, ok in (("MemoryMax=", memory), ("CPUQuota=", view.value("CPUQuota")))
            if not ok
        ]
        yield Problem(
            Severity.INFO,
            "no-limits",
            "",
            f"no {' or '.join(missing)}: one runaway service can starve the host",
        )


RULES: tuple[Rule, ...] = (
    syntax,
    wrong_section,
    deprecated,
    inline_comments,
    missing_requirements,
    spelled_twice,
    runtime_mistakes,
    hardening,
)


def lint(view: UnitView) -> list[Problem]:
    """Every problem of one unit, worst first."""
    problems = [p for rule in RULES for p in rule(view)]
    return sorted(problems, key=lambda p: -p.severity)


def canonical(name: str, aliases: Mapping[str, str]) -> str:
    """The real unit behind an alias: loaded units' Names, else the alias symlink on disk."""
    if name in aliases:
        return aliases[name]
    for base in UNIT_DIRS:
        path = os.path.join(base, name)
        if os.path.islink(path):
            target = os.path.basename(os.path.realpath(path))
            return name if target == "null" else target
    return name


def _home_section(key: str) -> str:
    if key in UNIT_ONLY:
        return "Unit"
    if key in INSTALL_ONLY:
        return "Install"
    if key in SERVICE_ONLY:
        return "Service"
    return ""


def _user_exists(user: str) -> bool:
    try:
        pwd.getpwnam(user)
    except KeyError:
        return False
    return True


def _pythonpath(view: UnitView) -> list[str]:
    paths: list[str] = []
    for d in all_values(view.files, "Service", "Environment"):
        for assignment in _split_env(d.value):
            name, _, value = assignment.partition("=")
            if name == "PYTHONPATH":
                paths += [p for p in value.split(":") if p]
    return paths


def _split_env(value: str) -> Sequence[str]:
    import shlex

    try:
        return shlex.split(value)
    except ValueError:
        return value.split()
