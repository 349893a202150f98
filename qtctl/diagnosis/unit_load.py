"""A unit as systemd 252 loads it from its files: the values it keeps, and whether it refuses it.

The fragment is read first, then the drop-ins. A setting systemd cannot use is ignored with a
warning (`issues`), or makes it stop reading: in the fragment that refuses the unit (load state
`bad-setting`, or `error` for a file it cannot parse), in a drop-in only the rest of that drop-in is
lost (unit_load_dropin ignores the error). After reading, service_verify() and its kin refuse
units that cannot run (no ExecStart=, two of them outside Type=oneshot, ...).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from qtctl.diagnosis import unit_values as values
from qtctl.diagnosis.specifiers import Specifiers
from qtctl.diagnosis.unit_file import Directive, UnitFile
from qtctl.diagnosis.unit_keys import KNOWN
from qtctl.diagnosis.unit_refusal import refusal
from qtctl.diagnosis.unit_values import BadValue, ExecCommand
from qtctl.diagnosis.unit_words import Words

EXEC_KEYS = frozenset(
    {
        "ExecCondition",
        "ExecStartPre",
        "ExecStart",
        "ExecStartPost",
        "ExecReload",
        "ExecStop",
        "ExecStopPost",
        "ExecStopPre",
    }
)
DEPENDENCY_KEYS = frozenset(
    {"Requires", "Requisite", "Wants", "BindsTo", "BindTo", "PartOf", "Upholds", "Conflicts"}
    | {"Before", "After", "OnFailure", "OnSuccess", "JoinsNamespaceOf", "PropagatesStopTo"}
    | {"PropagatesReloadTo", "PropagateReloadTo", "ReloadPropagatedFrom", "PropagateReloadFrom"}
    | {"StopPropagatedFrom"}
)
USER_KEYS = frozenset({"User", "Group", "SocketUser", "SocketGroup"})
SERVICE = frozenset({"Service"})
EXEC = frozenset({"Service", "Socket", "Mount", "Swap"})
CGROUP = EXEC | {"Slice", "Scope"}
SCALARS: dict[str, tuple[frozenset[str], Callable[[str], str]]] = {
    "Type": (SERVICE, values.enum("Type")),
    "Restart": (SERVICE, values.enum("Restart")),
    "ExitType": (SERVICE, values.enum("ExitType")),
    "NotifyAccess": (SERVICE, values.enum("NotifyAccess")),
    "RemainAfterExit": (SERVICE, values.yes_no),
    "KillMode": (EXEC, values.kill_mode),
    "ProtectHome": (EXEC, values.protect_home),
    "DynamicUser": (EXEC, values.fatal_yes_no),
    "MemoryMax": (CGROUP, values.size),
    "MemoryHigh": (CGROUP, values.size),
    "MemoryLimit": (CGROUP, values.size),
    "CPUQuota": (CGROUP, values.percent),
    "SuccessAction": (frozenset({"Unit"}), values.enum("SuccessAction")),
    "FailureAction": (frozenset({"Unit"}), values.enum("FailureAction")),
}
CHECKED = frozenset({*USER_KEYS, "WorkingDirectory", "SupplementaryGroups"})


@dataclass(frozen=True)
class Issue:
    """A value systemd ignores (or, `fatal`, refuses the unit for), where it stands."""

    where: str
    reason: str
    fatal: bool


@dataclass(frozen=True)
class Refusal:
    """Why systemd will not load the unit: the load state it ends in and its reason."""

    state: str  # bad-setting or error
    reason: str
    where: str = ""


class LoadedUnit:
    """The unit's files read as systemd reads them; values come back expanded and validated."""

    def __init__(self, name: str, files: Sequence[UnitFile], spec: Specifiers | None = None):
        self.name = name
        self.spec = spec or Specifiers(name, files[0].path if files else "")
        self.issues: list[Issue] = []
        self.stop: Refusal | None = None
        self._seen: dict[Directive, tuple[object, list[BadValue]]] = {}
        self.kept = tuple(self._read(f, index == 0) for index, f in enumerate(files))

    def _read(self, unit_file: UnitFile, fragment: bool) -> UnitFile:
        """The file's directives up to the first one that makes systemd stop reading it."""
        if self.stop is not None:
            return UnitFile(unit_file.path, ())
        for index, directive in enumerate(unit_file.directives):
            problem = self._check(directive)
            if problem is not None and problem.fatal:
                if fragment:
                    self.stop = Refusal("bad-setting", problem.reason, directive.where)
                ignored = tuple(i for i in unit_file.ignored if i[0] < directive.line)
                stop = (directive.line, problem.reason)
                return UnitFile(unit_file.path, unit_file.directives[:index], ignored, stop)
        if fragment and unit_file.fatal:
            line, reason = unit_file.fatal
            self.stop = Refusal("error", reason, f"{unit_file.path}:{line}")
        return unit_file

    def _check(self, d: Directive) -> BadValue | None:
        problems = self.interpret(d)[1]
        for problem in problems:
            self.issues.append(Issue(d.where, problem.reason, problem.fatal))
        return next((p for p in problems if p.fatal), None)

    def interpret(self, d: Directive) -> tuple[object, list[BadValue]]:
        """What systemd keeps of one assignment, and the problems it logs for it."""
        if d not in self._seen:
            try:
                self._seen[d] = self._interpret(d)
            except BadValue as bad:
                self._seen[d] = None, [bad]
        return self._seen[d]

    def _interpret(self, d: Directive) -> tuple[object, list[BadValue]]:
        key, spec = d.key, self.spec
        if key not in KNOWN.get(d.section, frozenset()):
            return d.value, []  # systemd ignores the line ("Unknown key"): nothing to check
        if key in SCALARS and d.section in SCALARS[key][0]:
            return SCALARS[key][1](d.value), []  # an empty value is invalid for some of them
        if not d.value:
            return None, []
        if key in EXEC_KEYS:
            return values.exec_line(d.value, spec)
        if key in DEPENDENCY_KEYS and d.section == "Unit":
            return values.dependencies(d.value, spec)
        if key == "Environment":
            return values.environment(d.value, spec)
        if key == "EnvironmentFile":
            return values.env_file(d.value, spec), []
        if key == "WorkingDirectory":
            return values.working_directory(d.value, spec), []
        if key in USER_KEYS:
            return values.user(d.value, spec), []
        if key == "SupplementaryGroups":
            try:
                words = Words(unquote=False, cunescape=False).split(d.value)
            except ValueError:
                raise BadValue(f"invalid syntax: {d.value}", True) from None
            return [values.user(w, spec) for w in words], []
        return d.value, []

    @property
    def refusal(self) -> Refusal | None:
        """Why systemd refuses to load this unit, or None when it loads it."""
        if self.name.endswith(".scope"):
            return Refusal("not-found", "scope units exist only at run time: no file loads one")
        if self.stop is not None:
            return self.stop
        reason = refusal(self)
        return Refusal("bad-setting", reason) if reason else None

    def directives(self, key: str, section: str = "Service") -> list[Directive]:
        """Every kept assignment of `key` in `section`, in the order systemd applies them."""
        return [d for f in self.kept for d in f.directives if d.key == key and d.section == section]

    def directives_in(self, section: str, keys: frozenset[str]) -> list[Directive]:
        """Every kept assignment of any of `keys` in `section`, in order (shared lists)."""
        return [
            d for f in self.kept for d in f.directives if d.key in keys and d.section == section
        ]

    def timer_directives(self) -> list[Directive]:
        """The [Timer] assignments that set trigger values, in order."""
        keys = frozenset({"OnCalendar", "OnActiveSec", "OnBootSec", "OnStartupSec"})
        return self.directives_in("Timer", keys | {"OnUnitActiveSec", "OnUnitInactiveSec"})

    def value(self, key: str, section: str = "Service") -> str:
        """The value systemd ends up with: the last one it accepts wins, an empty one resets
        (or is itself ignored, for the enumerations and booleans systemd checks)."""
        found = ""
        checked = key in CHECKED or (key in SCALARS and section in SCALARS[key][0])
        for d in self.directives(key, section):
            kept, problems = self.interpret(d)
            if problems and checked:
                continue
            found = kept if isinstance(kept, str) else d.value
        if key == "ProtectHome" and found in ("", "no") and self.value("DynamicUser") == "yes":
            return "read-only"  # unit_patch_contexts: DynamicUser= implies it
        return found

    def commands(self, key: str = "ExecStart", section: str = "Service") -> list[ExecCommand]:
        """The commands of an Exec*= list (`;`-separated lines split; an empty one resets)."""
        found: list[ExecCommand] = []
        for d in self.directives(key, section):
            kept = self.interpret(d)[0]
            found = [*found, *kept] if isinstance(kept, list) and d.value else []
        return found

    def environment(self) -> dict[str, str]:
        """Environment= after every assignment (an empty one resets)."""
        env: dict[str, str] = {}
        for d in self.directives("Environment"):
            kept = self.interpret(d)[0]
            env = {**env, **dict(kept)} if isinstance(kept, list) and d.value else {}
        return env

    def environment_files(self) -> list[tuple[str, bool, Directive]]:
        """EnvironmentFile= paths with their `-` (optional) flag, in order."""
        found: list[tuple[str, bool, Directive]] = []
        for d in self.directives("EnvironmentFile"):
            kept = self.interpret(d)[0]
            if not d.value:
                found = []
            elif isinstance(kept, tuple):
                found.append((kept[0], kept[1], d))
        return found

    def dependencies(self, key: str) -> list[tuple[str, Directive]]:
        """Units named by a dependency setting (specifiers expanded; never reset)."""
        found = []
        for d in self.directives(key, "Unit"):
            kept = self.interpret(d)[0]
            found += [(name, d) for name in kept] if isinstance(kept, list) else []
        return found


def home_of(user: str) -> str:
    """The home directory `WorkingDirectory=~` means for this User= ('' is root)."""
    import pwd

    if not user or user in ("root", "0"):
        return "/root"
    try:
        entry = pwd.getpwuid(int(user)) if user.isdigit() else pwd.getpwnam(user)
    except (KeyError, OverflowError):
        return ""
    return entry.pw_dir


def working_directory(unit: LoadedUnit) -> str:
    """The directory the service starts in ('' when none is set; `~` resolved through User=)."""
    workdir = unit.value("WorkingDirectory").removeprefix("!")
    return home_of(unit.value("User")) if workdir == "~" else workdir


def fleet_on_disk(patterns: Sequence[str], templates: bool = False) -> list[LoadedUnit]:
    """Every installed fleet unit and enabled template instance, loaded as systemd would;
    bare templates (`name@.service`) only when asked: systemd never runs them."""
    from qtctl.diagnosis.unit_file import drop_in_paths, parse
    from qtctl.diagnosis.unit_instances import is_template, units_on_disk

    found = []
    for name, fragment in sorted(units_on_disk(patterns).items()):
        if is_template(name) and not templates:
            continue
        files = [parse(p) for p in [fragment, *drop_in_paths(name)]]
        found.append(LoadedUnit(name, files, Specifiers(name, fragment)))
    return found
