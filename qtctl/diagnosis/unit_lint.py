"""Unit-file mistakes the real fleet had that `systemd-analyze verify` misses or words badly."""

from __future__ import annotations

import functools
import os
import pwd
import re
import shlex
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

from qtctl.diagnosis.specifiers import Specifiers
from qtctl.diagnosis.unit_file import UNIT_DIRS, UnitFile, sections_for
from qtctl.diagnosis.unit_keys import KNOWN
from qtctl.diagnosis.unit_load import LoadedUnit
from qtctl.engine.findings import Severity

DEPRECATED = {
    "MemoryLimit": "MemoryMax=",
    "CPUShares": "CPUWeight=",
    "StartupCPUShares": "StartupCPUWeight=",
    "BlockIOWeight": "IOWeight=",
    "StartupBlockIOWeight": "StartupIOWeight=",
    "BlockIODeviceWeight": "IODeviceWeight=",
    "BlockIOReadBandwidth": "IOReadBandwidthMax=",
    "BlockIOWriteBandwidth": "IOWriteBandwidthMax=",
    "StartLimitInterval": "StartLimitIntervalSec= in [Unit]",
    "PermissionsStartOnly": "the + prefix on ExecStartPre=",
}
# Those systemd 252 itself warns about at the line, even when empty ("Unit uses X=; please use
# Y= instead"); the others are deprecated by its manual pages and still applied silently.
WARNED_EVEN_EMPTY = frozenset(
    {"MemoryLimit", "CPUShares", "StartupCPUShares", "BlockIODeviceWeight"}
    | {"BlockIOReadBandwidth", "BlockIOWriteBandwidth"}
)
DEPENDENCIES = ("Requires", "Requisite", "Wants", "BindsTo", "PartOf", "After", "Before")
INLINE_COMMENT = re.compile(r"\s[#;]")
ENV_ASSIGNMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=")  # a word systemd takes as NAME=value
HIDING_HOME = ("yes", "tmpfs")  # read-only still lets the code be read
LONG_RUNNING = ("", "simple", "exec", "notify", "notify-reload", "dbus", "idle")
DELIBERATE_STOP = re.compile(r"(?i)emergency|kill[-_]?switch|panic|circuit[-_]?breaker")


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
    fragment: str = ""  # the file systemd loads it from (a template's, for an instance)
    protected: str = ""  # the fleet.protected pattern it matches ('' when none)

    @functools.cached_property
    def loaded(self) -> LoadedUnit:
        """The unit as systemd loads it from these files (specifiers expanded, values checked)."""
        fragment = self.fragment or (self.files[0].path if self.files else "")
        return LoadedUnit(self.name, self.files, Specifiers(self.name, fragment))

    def value(self, key: str, section: str = "Service") -> str:
        """The effective value of a key, as systemd keeps it."""
        return self.loaded.value(key, section)


Rule = Callable[[UnitView], Iterator[Problem]]


def syntax(view: UnitView) -> Iterator[Problem]:
    """Lines systemd drops: unknown sections, assignments outside a section, `=value`, and the
    line where it stops reading a file."""
    for unit_file in view.loaded.kept:
        dropin = unit_file is not view.loaded.kept[0]
        kind = "broken-drop-in" if dropin else "syntax"
        for number, text in unit_file.ignored:
            yield Problem(Severity.ERROR, kind, f"{unit_file.path}:{number}", text)
        if unit_file.fatal and dropin:
            number, text = unit_file.fatal
            what = f"{text}; systemd ignores the rest of this drop-in"
            yield Problem(Severity.ERROR, kind, f"{unit_file.path}:{number}", what)


def refused(view: UnitView) -> Iterator[Problem]:
    """Units systemd will not load at all (load state bad-setting or error), and why."""
    refusal = view.loaded.refusal
    if refusal is not None:
        text = f"systemd refuses to load it ({refusal.state}): {refusal.reason}"
        yield Problem(Severity.ERROR, "load-error", refusal.where, text)


def ignored_values(view: UnitView) -> Iterator[Problem]:
    """Values systemd ignores with a warning (invalid names, paths, specifiers, syntax)."""
    for issue in view.loaded.issues:
        if not issue.fatal:
            text = f"systemd ignores this value: {issue.reason}"
            yield Problem(Severity.WARNING, "ignored-value", issue.where, text)


def wrong_section(view: UnitView) -> Iterator[Problem]:
    """Directives systemd ignores ("Unknown key") because they sit in the wrong section."""
    for unit_file in view.loaded.kept:
        sections = sections_for(unit_file.path) & sections_for(view.name)
        for d in unit_file.directives:
            home = _home_section(d.key, d.section, sections)
            if home:
                yield Problem(
                    Severity.ERROR,
                    "wrong-section",
                    d.where,
                    f"{d.key}= belongs in [{home}], not [{d.section}]: systemd ignores it there",
                )


def deprecated(view: UnitView) -> Iterator[Problem]:
    """Directives that are deprecated (and will stop working); an empty one only where
    systemd itself warns about it."""
    for unit_file in view.loaded.kept:
        for d in unit_file.directives:
            if d.key in DEPRECATED and (d.value or d.key in WARNED_EVEN_EMPTY):
                yield Problem(
                    Severity.WARNING,
                    "deprecated",
                    d.where,
                    f"{d.key}= is deprecated: use {DEPRECATED[d.key]}",
                )


def inline_comments(view: UnitView) -> Iterator[Problem]:
    """`Key=value # note`: systemd has no inline comments, the note is part of the value."""
    for unit_file in view.loaded.kept:
        for d in unit_file.directives:
            if INLINE_COMMENT.search(d.value) and not d.key.startswith("Exec"):
                yield Problem(
                    Severity.ERROR, "inline-comment", d.where, _comment_text(d.key, d.value)
                )


def _comment_text(key: str, value: str) -> str:
    """What systemd makes of `Key=value # note`: for Environment= (whose words are assignments)
    the variables it sets and the words it ignores as invalid; else the value with its note."""
    head = f"{key}={value!r}: systemd has no inline comments"
    if key != "Environment":
        return f"{head}; the value is invalid or carries the comment as data"
    try:
        words = shlex.split(value, comments=False)
    except ValueError:
        return f"{head}; the comment's words are part of the value"
    valid = [w for w in words if ENV_ASSIGNMENT.match(w)]
    invalid = [w for w in words if not ENV_ASSIGNMENT.match(w)]
    sets = f"it sets {', '.join(valid)}" if valid else "it sets nothing"
    ignored = (
        f" and ignores {', '.join(map(repr, invalid))} as invalid assignments" if invalid else ""
    )
    return f"{head}: {sets}{ignored}"


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
        for name, _ in view.loaded.dependencies(key):
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
    commands = view.loaded.commands()
    exec_start = " ".join(w for c in commands for w in (c.path, *c.argv))
    workdir = view.value("WorkingDirectory")
    protect = view.value("ProtectHome")
    hidden = (
        _hidden_code(view, f"{exec_start} {workdir}", protect) if protect in HIDING_HOME else []
    )
    if hidden:
        yield Problem(
            Severity.ERROR,
            "protect-home",
            "",
            f"ProtectHome={protect} hides /home, where this service's code lives ({hidden[0]})",
        )
    if workdir and not workdir.startswith(("!", "~")) and not os.path.isdir(workdir):
        yield Problem(
            Severity.ERROR, "working-directory", "", f"WorkingDirectory={workdir} does not exist"
        )
    user = view.value("User")
    dynamic = view.value("DynamicUser") == "yes"  # systemd makes the user up at start
    if user and not dynamic and not user.isdigit() and not _user_exists(user):
        yield Problem(Severity.ERROR, "bad-user", "", f"User={user} does not exist on this host")
    for path in _pythonpath(view):
        if not os.path.isdir(path):
            yield Problem(
                Severity.ERROR, "pythonpath", "", f"PYTHONPATH entry {path} does not exist"
            )


def _hidden_code(view: UnitView, words: str, protect: str) -> list[str]:
    """The /home paths of the unit's commands and WorkingDirectory= that no `BindPaths=` or
    `BindReadOnlyPaths=` brings back: under ProtectHome=tmpfs a bind's target (`SRC[:DST]`) is
    mounted into the empty /home, the documented way to expose one folder of it; under
    ProtectHome=yes /home itself is made inaccessible (mode 000), so a bind below it does not
    let a service user reach its code (tested: `Permission denied` on the script)."""
    keys = ("BindPaths", "BindReadOnlyPaths") if protect == "tmpfs" else ()
    bound = [
        _bind_target(entry)
        for key in keys
        for d in view.loaded.directives(key)
        for entry in d.value.split()
    ]
    paths = [w for w in words.split() if w.startswith("/home/")]
    return [p for p in paths if not any(p == b or p.startswith(b.rstrip("/") + "/") for b in bound)]


def _bind_target(entry: str) -> str:
    """Where `[-]SRC[:DST[:OPTS]]` is visible inside the unit's namespace."""
    source, _, rest = entry.lstrip("-").partition(":")
    return rest.partition(":")[0] or source


def hardening(view: UnitView) -> Iterator[Problem]:
    """Long-running services without Restart=, Python as root, no resource limits."""
    commands = view.loaded.commands()
    if not view.name.endswith(".service") or not commands:
        return
    kind = view.value("Type")
    restart = view.value("Restart")
    if kind in LONG_RUNNING and restart in ("", "no"):
        yield _no_restart(view)
    python = os.path.basename(commands[0].path).startswith("python")
    per_instance = view.name.partition("@")[2].startswith(".") and "%" in _raw(view, "User")
    root = view.value("User") in ("", "root", "0") and not per_instance
    if python and root and view.value("DynamicUser") != "yes":
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


def _no_restart(view: UnitView) -> Problem:
    """A warning, or an info where staying down is evidently meant: a protected unit, an
    emergency or kill-switch unit (restarting one could re-fire it). Type=oneshot units never
    get here: they are meant to exit."""
    deliberate = (
        f"in fleet.protected ({view.protected!r})"
        if view.protected
        else "an emergency/kill-switch unit"
        if DELIBERATE_STOP.search(view.name)
        else ""
    )
    if deliberate:
        text = f"no Restart=: if it dies it stays down, evidently on purpose ({deliberate})"
        return Problem(Severity.INFO, "no-restart", "", text)
    if view.value("Restart") == "no":  # written: fix holds it unless named, as it says here
        text = (
            "Restart=no: if it dies it stays down (written in its unit files, so fix adds "
            f"Restart=on-failure only when named: --only {view.name})"
        )
        return Problem(Severity.WARNING, "no-restart", "", text)
    text = "no Restart=: if it dies it stays down (fix adds Restart=on-failure)"
    return Problem(Severity.WARNING, "no-restart", "", text)


RULES: tuple[Rule, ...] = (
    syntax,
    refused,
    ignored_values,
    wrong_section,
    deprecated,
    inline_comments,
    missing_requirements,
    spelled_twice,
    runtime_mistakes,
    hardening,
)
# A template's instances share its file: what does not depend on the instance is said once, on
# the template (a drop-in there fixes every instance); paths, specifiers and refusals, which do,
# on each enabled instance, read with its own %i.
BY_INSTANCE: tuple[Rule, ...] = (refused, ignored_values, missing_requirements, runtime_mistakes)
TEMPLATE_RULES = tuple(r for r in RULES if r not in BY_INSTANCE)


def lint(view: UnitView, rules: tuple[Rule, ...] = RULES) -> list[Problem]:
    """Every problem of one unit, worst first; an ignored value only where no other rule
    already speaks of that line."""
    if view.name.endswith(".scope"):
        rules = (refused,)  # systemd never reads a .scope file
    elif view.loaded.refusal is not None:  # how it would run is moot while systemd refuses it
        rules = tuple(r for r in rules if r not in (runtime_mistakes, hardening))
    problems = [p for rule in rules for p in rule(view)]
    said = {p.where for p in problems if p.kind != "ignored-value"}
    kept = [p for p in problems if p.kind != "ignored-value" or p.where not in said]
    return sorted(kept, key=lambda p: -p.severity)


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


def _home_section(key: str, section: str, sections: frozenset[str]) -> str:
    """The section of this unit type that knows `key`, when the one it sits in does not."""
    if section not in KNOWN or key in KNOWN[section] or key.startswith("X-"):
        return ""
    homes = sorted(s for s in sections if key in KNOWN.get(s, frozenset()))
    return homes[0] if homes else ""


def _raw(view: UnitView, key: str) -> str:
    """The last assignment as written (before systemd expands it)."""
    found = [d.value for d in view.loaded.directives(key)]
    return found[-1] if found else ""


def _user_exists(user: str) -> bool:
    try:
        pwd.getpwnam(user)
    except KeyError:
        return False
    return True


def _pythonpath(view: UnitView) -> list[str]:
    value = view.loaded.environment().get("PYTHONPATH", "")
    return [p for p in value.split(":") if p]
