"""QT104 on a checkout: every unit file of the tree read as systemd reads it, one finding per
problem at its file and line; plus what only a tree shows (one unit name, different files)."""

from __future__ import annotations

import os
from collections.abc import Iterator

from qtctl.diagnosis.specifiers import Specifiers
from qtctl.diagnosis.unit_file import UNIT_DIRS, parse_bytes
from qtctl.diagnosis.unit_instances import is_template, template_of
from qtctl.diagnosis.unit_lint import (
    RULES,
    TEMPLATE_RULES,
    Problem,
    Rule,
    UnitView,
    lint,
    runtime_mistakes,
)
from qtctl.diagnosis.unit_load import LoadedUnit
from qtctl.engine.findings import Finding, Severity
from qtctl.formats.model import Location, shown_path
from qtctl.lint.rules import mapped_runtime, unknown_keys
from qtctl.lint.tree import PathMap, Tree

CODE = "QT104"
HOST_UNIT_DIRS = (*UNIT_DIRS, "/usr/lib/systemd/system", "/lib/systemd/system")
# systemd.special(7): units every host has, which a checkout never ships.
SPECIAL = frozenset(
    [
        "basic.target",
        "bluetooth.target",
        "cryptsetup.target",
        "ctrl-alt-del.target",
        "default.target",
        "emergency.target",
        "exit.target",
        "final.target",
        "getty.target",
        "graphical.target",
        "halt.target",
        "hibernate.target",
        "hybrid-sleep.target",
        "initrd.target",
        "kexec.target",
        "local-fs.target",
        "local-fs-pre.target",
        "multi-user.target",
        "network.target",
        "network-online.target",
        "network-pre.target",
        "nss-lookup.target",
        "nss-user-lookup.target",
        "paths.target",
        "poweroff.target",
        "printer.target",
        "reboot.target",
        "remote-fs.target",
        "remote-fs-pre.target",
        "rescue.target",
        "rpcbind.target",
        "shutdown.target",
        "sigpwr.target",
        "sleep.target",
        "slices.target",
        "smartcard.target",
        "sockets.target",
        "sound.target",
        "suspend.target",
        "swap.target",
        "sysinit.target",
        "system-update.target",
        "time-set.target",
        "time-sync.target",
        "timers.target",
        "umount.target",
        "usb.target",
        "-.slice",
        "system.slice",
        "user.slice",
        "machine.slice",
        "-.mount",
        "init.scope",
        "dbus.service",
        "dbus.socket",
        "syslog.socket",
        "systemd-journald.service",
        "systemd-journald.socket",
    ]
)
LINT_RULES: tuple[Rule, ...] = (*(r for r in RULES if r is not runtime_mistakes), unknown_keys)
LINT_TEMPLATE_RULES: tuple[Rule, ...] = (*TEMPLATE_RULES, unknown_keys)


def unit_views(tree: Tree) -> list[UnitView]:
    """Each unit of the tree (its first path) with its drop-ins, as systemd would load it;
    a Requires= is missing when neither the tree, the host nor systemd itself has the unit."""
    views = []
    for name, paths in sorted(tree.units.items()):
        read = [paths[0], *drop_ins(tree, name, paths[0])]
        files = tuple(parse_bytes(tree.data[p], p) for p in read)
        loaded = LoadedUnit(name, files, Specifiers(name, paths[0]))
        requires = tuple(dep for dep, _ in loaded.dependencies("Requires"))
        missing = frozenset(n for n in requires if not _exists(tree, n))
        views.append(UnitView(name, files, requires, missing, {}, paths[0]))
    return views


def drop_ins(tree: Tree, name: str, fragment: str) -> list[str]:
    """`NAME.d/*.conf` (and the template's) beside the unit file, sorted by file name."""
    folder = os.path.dirname(fragment)
    names = [name, template_of(name)] if template_of(name) else [name]
    chosen: dict[str, str] = {}
    for stem in names:
        for path in tree.drop_ins.get(os.path.join(folder, f"{stem}.d"), []):
            chosen.setdefault(os.path.basename(path), path)
    return [chosen[k] for k in sorted(chosen)]


def unit_findings(
    tree: Tree, views: list[UnitView], paths: PathMap
) -> Iterator[tuple[Finding, Location]]:
    """Every problem of every unit file in the tree, then the duplicated names."""
    for view in views:
        template = is_template(view.name)
        problems = lint(view, LINT_TEMPLATE_RULES if template else LINT_RULES)
        if not template and view.loaded.refusal is None:
            problems += list(mapped_runtime(view, paths))
        for problem in sorted(problems, key=lambda p: -p.severity):
            yield _finding(view.name, problem, view.fragment)
    yield from _duplicates(tree)
    yield from _unparsed(tree)


def _unparsed(tree: Tree) -> Iterator[tuple[Finding, Location]]:
    """A unit file or drop-in with NUL bytes or millions of lines: not parsed (the tree's
    `_not_parsed` says why)."""
    for path, why in sorted(tree.unparsed):
        where = shown_path(path)
        finding = Finding(
            CODE,
            Severity.ERROR,
            os.path.basename(path),
            why,
            cause="not-a-unit-file",
            fix_hint="restore the unit file's text in the repository",
        )
        yield finding, Location(where)


def _exists(tree: Tree, name: str) -> bool:
    if name in SPECIAL or tree.has_unit(name):
        return True
    return any(os.path.lexists(os.path.join(d, name)) for d in HOST_UNIT_DIRS)


def _finding(name: str, problem: Problem, fragment: str) -> tuple[Finding, Location]:
    path, _, line = problem.where.rpartition(":")
    location = (
        Location(shown_path(path), int(line))
        if path and line.isdigit()
        else Location(shown_path(problem.where or fragment))
    )
    finding = Finding(
        code=CODE,
        severity=problem.severity,
        subject=name,
        message=problem.text,
        cause=problem.kind,
        fix_hint="edit the unit file in the repository",
    )
    return finding, location


def _duplicates(tree: Tree) -> Iterator[tuple[Finding, Location]]:
    for name, paths in sorted(tree.units.items()):
        for other in paths[1:]:
            if tree.data[other] != tree.data[paths[0]]:
                yield (
                    Finding(
                        code=CODE,
                        severity=Severity.ERROR,
                        subject=name,
                        message=f"{name} is also {shown_path(paths[0])}, with different content: "
                        "which one a host runs depends on how it was deployed",
                        cause="duplicate-unit",
                        fix_hint="keep one file per unit name",
                    ),
                    Location(shown_path(other)),
                )
