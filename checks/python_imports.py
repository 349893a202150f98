"""QT201/QT203/QT204: imports that will fail as each Python unit really starts."""

from __future__ import annotations

import os
import time
from collections import defaultdict
from collections.abc import Iterator

from qtctl.diagnosis.fleet import fleet_python_services, fleet_units, run_analysis
from qtctl.diagnosis.imports import ImportProblem
from qtctl.engine.check import Check
from qtctl.engine.context import CheckContext
from qtctl.engine.facts import UnitFacts
from qtctl.engine.findings import CodeDoc, Finding, Severity

UNRESOLVABLE = CodeDoc(
    code="QT201",
    title="unresolvable import in a service",
    severity="error/warning/info",
    meaning="For each Python service unit, qtctl rebuilds how it starts (interpreter, script or "
    "-m module, WorkingDirectory, Environment=/EnvironmentFile=), computes its sys.path "
    "including the script's own top-level sys.path changes (evaluated statically, names assigned "
    "before them followed: `root = Path(__file__).resolve().parents[2]`; os.getcwd() and '.' are "
    "the WorkingDirectory), and resolves its imports (and those of the first-party modules it "
    "reaches) without running them. Relative imports resolve as Python resolves them, against "
    "the importing module's package: the dotted name it was started (-m) or imported as; one "
    "Python refuses (in a script run as `python3 main.py`, or beyond the top-level package) is "
    "reported with Python's own ImportError. Each import that will fail is reported with its "
    "root cause: PYTHONPATH not set, a sys.path hack resolving elsewhere, a shadowing package. "
    "A unit whose WorkingDirectory= is missing never gets to its imports (systemd fails it with "
    "200/CHDIR): QT104 and QT101 say so, QT201 does not. An import under a module-level "
    "if/else is not certain to run: its failure is a warning without repair (an info on a "
    "settled running unit); only unconditional imports are errors (docs/precision.md).",
    why="The service dies at start with ModuleNotFoundError (the incident that started qtctl).",
    fix="Set PYTHONPATH in a drop-in (`qtctl fix` writes it after proving that every import "
    "resolves with it); remove sys.path hacks that put a stale copy first.",
    repair=UnitFacts,
)
SHADOWED = CodeDoc(
    code="QT203",
    title="shadowed package",
    severity="warning",
    meaning="Two directories on a service's sys.path provide the same top-level package; the "
    "first wins, even when it is a stale copy without the module the service needs.",
    why="Imports resolve to the wrong code, or fail for modules only the second copy has.",
    fix="Delete the stale copy, or remove the sys.path change that puts it first.",
)
WRONG_INTERPRETER = CodeDoc(
    code="QT204",
    title="wrong interpreter",
    severity="error",
    meaning="A third-party import the unit's interpreter does not have, while another Python "
    "environment on the host (e.g. /opt/quantum/venvs/NAME) does: the unit runs the wrong "
    "python.",
    why="The service dies at start with ModuleNotFoundError.",
    fix="Point ExecStart= at the venv's interpreter (`/opt/quantum/venvs/NAME/bin/python3`).",
)
SETTLED_SEC = 60  # up this long, a unit systemd restarted before counts as running
SEVERITY = {"QT201": Severity.ERROR, "QT203": Severity.WARNING, "QT204": Severity.ERROR}


def run(ctx: CheckContext) -> Iterator[Finding]:
    """One finding per unit and code, each import problem a detail line."""
    for service in fleet_python_services(ctx):
        if service.workdir and not os.path.isdir(service.workdir):
            continue  # systemd fails it at chdir (200/CHDIR), before any import: QT104/QT101's
        analysis = run_analysis(ctx, service)  # shared with QT107, once per run
        grouped: dict[str, list[ImportProblem]] = defaultdict(list)
        for problem in analysis.problems:
            grouped[problem.code].append(problem)
        running = service.unit in _running(ctx)
        for code, problems in sorted(grouped.items()):
            yield _finding(service.unit, code, problems, running)


def _running(ctx: CheckContext) -> frozenset[str]:
    """Units whose process is up and settled (never restarted by systemd, or up for a minute):
    evidence that the imports they executed resolved; a crash loop's moments up are not."""
    now = time.time()
    return frozenset(
        u.name
        for u in fleet_units(ctx)
        if u.active_state == "active"
        and u.sub_state == "running"
        and (
            not u.props.get("NRestarts")
            or now - int(u.props.get("ExecMainStartTimestamp") or 0) / 1e6 > SETTLED_SEC
        )
    )


def _finding(unit: str, code: str, problems: list[ImportProblem], running: bool) -> Finding:
    problems = sorted(problems, key=lambda p: bool(p.condition))  # certain failures first
    first = problems[0]
    what = f"import {first.module} will fail: " if code == "QT201" and first.module else ""
    if code == "QT203":
        what = f"package {first.module}: "
    when = f" (only when `{first.condition}` holds)" if first.condition else ""
    more = f" (+{len(problems) - 1} more)" if len(problems) > 1 else ""
    severity = _severity(code, first, running)
    repairable = code == "QT201" and severity == Severity.ERROR
    return Finding(
        code=code,
        severity=severity,
        subject=unit,
        message=f"{what}{first.cause}{when}{more}",
        cause={"QT201": "import-error", "QT203": "shadowed", "QT204": "wrong-interpreter"}[code],
        detail=tuple(_detail(p) for p in problems),
        fix_hint="qtctl fix writes a PYTHONPATH drop-in once it resolves every import"
        if repairable
        else "see qtctl explain " + code,
        facts=UnitFacts(unit) if repairable else None,
    )


def _severity(code: str, first: ImportProblem, running: bool) -> Severity:
    """An import that runs only under a condition is not certain to fail the unit: a warning
    with no repair, an info while the unit runs (docs/precision.md); the rest as SEVERITY."""
    if not first.condition or code == "QT203":
        return SEVERITY[code]
    return Severity.INFO if running else Severity.WARNING


def _detail(problem: ImportProblem) -> str:
    when = f" (only when `{problem.condition}` holds)" if problem.condition else ""
    return f"{problem.where}: {problem.module or '-'}: {problem.cause}{when}"


CHECK = Check(name="python_imports", codes=(UNRESOLVABLE, SHADOWED, WRONG_INTERPRETER), run=run)
