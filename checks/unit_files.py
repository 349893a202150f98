"""QT104: unit file problems, from `systemd-analyze verify` and qtctl's own reading of the files."""

from __future__ import annotations

import fnmatch
import os
import re
import subprocess
from collections.abc import Iterator, Sequence

from qtctl.diagnosis.fleet import FleetUnit, fleet_units
from qtctl.diagnosis.specifiers import Specifiers
from qtctl.diagnosis.unit_file import UNIT_DIRS, drop_in_paths, parse
from qtctl.diagnosis.unit_instances import is_template, template_of, units_on_disk
from qtctl.diagnosis.unit_lint import (
    BY_INSTANCE,
    RULES,
    TEMPLATE_RULES,
    Problem,
    Rule,
    UnitView,
    lint,
)
from qtctl.diagnosis.unit_load import LoadedUnit
from qtctl.engine.check import Check
from qtctl.engine.context import CheckContext
from qtctl.engine.facts import UnitFacts
from qtctl.engine.findings import CodeDoc, Finding, Severity
from qtctl.fix.policy import aliases_on_disk

REFUSED_STATES = ("bad-setting", "error")
VERIFY_AT_LINE = re.compile(r"^(/\S+):(\d+): (.*)$")
VERIFY_UNIT = re.compile(r"^(\S+\.(?:service|timer|socket|target|path|mount|slice)): (.*)$")
VERIFY_TIMEOUT = 30
FATAL_ECHO = "Unit configuration has fatal error"  # verify's echo of a refusal qtctl words

UNIT_FILE_PROBLEMS = CodeDoc(
    code="QT104",
    title="unit file problems",
    severity="error/warning/info",
    meaning="What `systemd-analyze verify` reports for the fleet's units (missing ExecStart "
    "programs, unknown directives) plus what it misses or words cryptically: directives in the "
    "wrong section (StartLimitIntervalSec= under [Service] is ignored; StartLimitBurst= there is "
    "a compatibility alias systemd applies, so it is not reported), deprecated ones "
    "(MemoryLimit=), inline `# comments` (systemd has none), broken drop-ins, Requires= on units "
    "that do not exist, one dependency spelled several ways, ProtectHome= over code in /home, "
    "missing WorkingDirectory/User/PYTHONPATH entries, Python services as root, services "
    "without Restart= (a warning; info, never auto-fixed, where staying down is evidently meant: "
    "units in fleet.protected and emergency/kill-switch units; Type=oneshot units are meant to "
    "exit and get none) or without memory/CPU limits; lines and values systemd ignores (`=value`, "
    "invalid names or paths) and units it refuses to load, with its reason (`load-error`: live "
    "from the unit's LoadError, static from the same rules: no ExecStart=, two outside "
    "Type=oneshot, a bad specifier...). Values are read as systemd reads them: specifiers "
    "expanded (template instances with their instance), `;` splitting ExecStart= lines. "
    "`cause` lists the problem kinds.",
    why="Each of these silently changes how the unit runs: a limit that is not applied, a "
    "restart policy that never triggers, a service that cannot start.",
    fix="Edit the unit with `systemctl edit UNIT` (a drop-in) rather than the vendor file; "
    "`qtctl fix` adds Restart=on-failure as a drop-in where no-restart is a warning. Every claim "
    "here about what systemd does is checked against systemd in tests/test_precision_unit_lint.py.",
    repair=UnitFacts,
)


def run(ctx: CheckContext) -> Iterator[Finding]:
    """One finding per fleet unit whose files have problems (read from disk, not D-Bus)."""
    units = {u.name: u for u in fleet_units(ctx)}
    not_found = frozenset(n for n, u in units.items() if u.load_state == "not-found")
    files = units_on_disk(ctx.config.fleet.units)
    refused = {n: u for n, u in units.items() if u.load_state in REFUSED_STATES}
    files.update(
        {
            n: str(u.props.get("FragmentPath"))
            for n, u in refused.items()
            if u.props.get("FragmentPath")
        }
    )
    verified = verify(sorted(set(files.values())))
    for name, fragment in sorted(files.items()):
        protected = _protected(_names(name, ctx), ctx.config.fleet.protected)
        view = _view(name, fragment, not_found, protected)
        problems = lint(view, _rules(name, fragment))
        problems = _load_error(refused.get(name), problems) + _stray_drop_ins(name)
        problems += _verify_problems(name, view, verified, problems)
        if problems:
            yield _finding(name, sorted(problems, key=lambda p: -p.severity))


def _view(name: str, fragment: str, not_found: frozenset[str], protected: str) -> UnitView:
    files = tuple(parse(p) for p in [fragment, *drop_in_paths(name)])
    loaded = LoadedUnit(name, files, Specifiers(name, fragment))
    requires = tuple(dep for dep, _ in loaded.dependencies("Requires"))
    return UnitView(name, files, requires, not_found, {}, fragment, protected)


def _names(name: str, ctx: CheckContext) -> tuple[str, ...]:
    """Every name of the unit (systemd's Names, the alias links on disk), as fix matches them."""
    unit = next((u for u in fleet_units(ctx) if u.name == name), None)
    return (*(unit.names if unit else (name,)), *aliases_on_disk(name))


def _protected(names: Sequence[str], patterns: Sequence[str]) -> str:
    """The fleet.protected pattern one of the unit's names (or their templates) matches, or ''."""
    every = [*names, *filter(None, map(template_of, names))]
    return next((p for p in patterns for n in every if fnmatch.fnmatchcase(n, p)), "")


def _rules(name: str, fragment: str) -> tuple[Rule, ...]:
    """A template: what holds for every instance; an instance read from the template's file:
    what depends on its instance; any other unit: everything."""
    if is_template(name):
        return TEMPLATE_RULES
    if template_of(name) and os.path.basename(fragment) == template_of(name):
        return BY_INSTANCE
    return RULES


def verify(paths: Sequence[str]) -> list[str]:
    """`systemd-analyze verify` over all fleet unit files at once; its message lines."""
    if not paths:
        return []
    try:
        res = subprocess.run(
            ["systemd-analyze", "verify", *paths],
            capture_output=True,
            text=True,
            errors="replace",
            timeout=VERIFY_TIMEOUT,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return [f"systemd-analyze verify could not run: {exc}"]
    return [line for line in res.stderr.splitlines() if line.strip()]


def _verify_problems(
    name: str, view: UnitView, lines: list[str], own: list[Problem]
) -> list[Problem]:
    paths = {f.path for f in view.files}
    seen = {p.where for p in own if p.where}
    own_text = " ".join(p.text for p in own)
    found = []
    for line in lines:
        at = VERIFY_AT_LINE.match(line)
        named = VERIFY_UNIT.match(line)
        if at and at.group(1) in paths:
            where, text = f"{at.group(1)}:{at.group(2)}", at.group(3)
        elif named and named.group(1) == name:
            where, text = "", named.group(2)
        else:
            continue
        missing = re.search(r"Unit (\S+) not found", text)
        if where in seen or (missing and missing.group(1) in own_text) or text in own_text:
            continue  # qtctl's own finding says it more clearly
        if text.startswith(FATAL_ECHO) and "load-error" in {p.kind for p in own}:
            continue
        found.append(Problem(_verify_severity(text), "verify", where, text))
    return found


def _verify_severity(text: str) -> Severity:
    fatal = ("not executable", "not found", "Failed to", "Refusing", "has no ExecStart")
    return Severity.ERROR if any(word in text for word in fatal) else Severity.WARNING


def _stray_drop_ins(name: str) -> list[Problem]:
    found = []
    for base in UNIT_DIRS:
        folder = os.path.join(base, f"{name}.d")
        if not os.path.isdir(folder):
            continue
        for entry in sorted(os.listdir(folder)):
            if not entry.endswith(".conf"):
                found.append(
                    Problem(
                        Severity.WARNING,
                        "broken-drop-in",
                        f"{folder}/{entry}",
                        "drop-in does not end in .conf: systemd ignores it",
                    )
                )
    return found


def _load_error(unit: FleetUnit | None, problems: list[Problem]) -> list[Problem]:
    """The live refusal (the unit's LoadError over D-Bus), merged with the static reason."""
    static = next((p for p in problems if p.kind == "load-error"), None)
    if unit is None:
        return problems
    error = unit.props.get("LoadError") or ("", "")
    live = f"systemd refused to load it ({unit.load_state}): {error[1] or error[0]}"
    text = f"{live.rstrip('.')} ({static.text.partition(': ')[2]})" if static else live
    merged = Problem(Severity.ERROR, "load-error", static.where if static else "", text)
    return [merged, *(p for p in problems if p is not static)]


def _finding(name: str, problems: list[Problem]) -> Finding:
    worst = problems[0]
    kinds = list(dict.fromkeys(p.kind for p in problems))
    # only a plain no-restart warning is fixable: a deliberate one (info) is never auto-fixed
    fixable = any(p.kind == "no-restart" and p.severity == Severity.WARNING for p in problems)
    more = f" (+{len(problems) - 1} more)" if len(problems) > 1 else ""
    return Finding(
        code=UNIT_FILE_PROBLEMS.code,
        severity=worst.severity,
        subject=name,
        message=f"{worst.text}{more}",
        cause=",".join(kinds),
        detail=tuple(p.line() for p in problems),
        fix_hint="drop-in with Restart=on-failure"
        if fixable
        else "edit with `systemctl edit UNIT` (a drop-in), then daemon-reload",
        facts=UnitFacts(name) if fixable else None,
    )


CHECK = Check(name="unit_files", codes=(UNIT_FILE_PROBLEMS,), run=run)
