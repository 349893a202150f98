"""`qtctl lint` as a library call: the checkout's files in, a report with a location per
finding out. Reads files only: no systemd, no Redis, nothing written."""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Iterator, Sequence

from qtctl.config import Config
from qtctl.diagnosis.code_scan import CodeScan
from qtctl.diagnosis.unit_lint import UnitView
from qtctl.engine.findings import Finding
from qtctl.engine.report import Report
from qtctl.engine.runner import Selection
from qtctl.formats.model import Location, Results, build
from qtctl.lint.ignored import ignored_by_git
from qtctl.lint.scripts import script_findings
from qtctl.lint.services import env_findings, import_findings
from qtctl.lint.sources import code_scan, source_findings
from qtctl.lint.tree import PathMap, Tree, find_units
from qtctl.lint.units import unit_findings, unit_views
from qtctl.redaction import Redactor

CHECKS = ("unit_files", "executed_scripts", "source_files", "python_imports", "env_files")


def run_lint(config: Config, paths: Sequence[str]) -> Results:
    """Every static check on the files and folders given, findings in a stable order."""
    started = time.monotonic()
    roots = [os.path.abspath(p) for p in paths]
    checkout = next((p for p in roots if os.path.isdir(p)), os.getcwd())
    mapping = PathMap.parse(config.lint.path_map, config.fleet.code_roots, checkout)
    tree = find_units(roots, checkout)
    code = code_scan(roots, int(config.code.max_file_mb * 2**20), config.code.max_files)
    _drop_ignored(tree, code, checkout, set(roots))
    views = unit_views(tree)
    found = list(_all(tree, views, mapping, code, roots))
    selection = Selection(config.doctor.select, config.doctor.ignore)
    # Messages and hints repeat across thousands of CRLF files: redact each text once.
    shown = functools.lru_cache(maxsize=4096)(Redactor.of(config.services.secret_patterns).shown)
    kept = [(f.cleaned(shown), loc) for f, loc in found if selection.wants(f.code)]
    report = Report(tuple(f for f, _ in kept), (), CHECKS, time.monotonic() - started)
    return build("lint", report, [loc for _, loc in kept])


def _drop_ignored(tree: Tree, code: CodeScan, checkout: str, named: set[str]) -> None:
    """What the walk found under folders git ignores is not linted (a file named on the
    command line still is)."""
    found = [p for paths in tree.units.values() for p in paths]
    found += [p for paths in tree.drop_ins.values() for p in paths]
    found += [f.path for f in code.crlf] + [line.path for line in code.sys_path]
    ignored = ignored_by_git(checkout, {p for p in found if p not in named})
    if not ignored:
        return
    units = {n: [p for p in paths if p not in ignored] for n, paths in tree.units.items()}
    tree.units = {n: paths for n, paths in units.items() if paths}
    tree.drop_ins = {
        d: [p for p in paths if p not in ignored] for d, paths in tree.drop_ins.items()
    }
    code.crlf = [f for f in code.crlf if f.path not in ignored]
    code.sys_path = [line for line in code.sys_path if line.path not in ignored]


def _all(
    tree: Tree, views: list[UnitView], mapping: PathMap, code: CodeScan, paths: Sequence[str]
) -> Iterator[tuple[Finding, Location]]:
    yield from unit_findings(tree, views, mapping)
    scripts = list(script_findings(views, mapping))
    yield from scripts
    named = {os.path.abspath(loc.path) for f, loc in scripts if f.code == "QT301"}
    yield from source_findings(code, named, mapping)
    yield from import_findings(views, mapping, paths)
    yield from env_findings(views, mapping)
