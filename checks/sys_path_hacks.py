"""QT202: fragile sys.path manipulation in the code roots (__file__-relative, foreign paths)."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator

from qtctl.checks.line_endings import code_scan
from qtctl.diagnosis.code_scan import SysPathLine
from qtctl.diagnosis.python_source import parse
from qtctl.diagnosis.sys_path_eval import file_relative_lines
from qtctl.engine.check import Check
from qtctl.engine.context import CheckContext
from qtctl.engine.findings import CodeDoc, Finding, Severity

LITERAL = re.compile(r"""[rRuU]?(['"])(.+?)\1""")
LOOKS_LIKE_PATH = re.compile(r"^(/|~|[A-Za-z]:[\\/])")
SUGGESTION = (
    "delete the hack and let the unit set PYTHONPATH (`qtctl fix` writes a drop-in); if a script "
    "must, use sys.path.insert(0, str(Path(__file__).resolve().parents[N])) for the project root"
)

FRAGILE_SYS_PATH = CodeDoc(
    code="QT202",
    title="fragile sys.path manipulation",
    severity="warning",
    meaning="Code under the code roots (dot-folders included, unless code.exclude_dirs names "
    "them) changes sys.path relative to __file__, directly or through names assigned from it "
    "(`root = Path(__file__).resolve().parents[2]; sys.path.insert(0, str(root))`): the result "
    "depends on where the file sits and how it is started; or it inserts hard-coded paths that "
    "do not exist on this host (`/app`, `c:\\quantum_trader`, another user's home).",
    why="The real incident: main.py's __file__-relative insert resolved to microservices/, a stale "
    "copy of ai_engine shadowed the real one, and the service died with ModuleNotFoundError.",
    fix="Remove the manipulation and set PYTHONPATH in the unit (a drop-in); where a script "
    "really must, insert str(Path(__file__).resolve().parents[N]) for the project root.",
)


def run(ctx: CheckContext) -> Iterator[Finding]:
    """Two summaries: __file__-relative hacks, and hard-coded paths missing on this host."""
    lines = code_scan(ctx).sys_path
    memo: dict[str, dict[int, str]] = {}
    relative = [line for line in lines if _file_relative(line, memo)]
    foreign = [(line, path) for line in lines for path in _missing_literals(line.text)]
    if relative:
        yield _summary(
            f"{len(relative)} sys.path change(s) relative to __file__ in "
            f"{len({line.path for line in relative})} file(s)",
            "file-relative",
            [f"{line.path}:{line.line}: {line.text}" for line in relative],
        )
    if foreign:
        yield _summary(
            f"{len(foreign)} hard-coded sys.path entr(ies) that do not exist on this host",
            "missing-path",
            [
                f"{line.path}:{line.line}: {path} does not exist ({line.text})"
                for line, path in foreign
            ],
        )


def _file_relative(line: SysPathLine, memo: dict[str, dict[int, str]]) -> bool:
    """__file__ in the call itself, or in a name it uses (`root = Path(__file__)...`)."""
    if "__file__" in line.text:
        return True
    if line.path not in memo:
        tree = parse(line.path)[0]  # parsed only for files that change sys.path at all
        memo[line.path] = file_relative_lines(tree) if tree is not None else {}
    return memo[line.path].get(line.line) == "file"


def _missing_literals(text: str) -> list[str]:
    paths = [m.group(2) for m in LITERAL.finditer(text) if LOOKS_LIKE_PATH.match(m.group(2))]
    return [p for p in paths if not os.path.exists(os.path.expanduser(p))]


def _summary(message: str, cause: str, detail: list[str]) -> Finding:
    return Finding(
        code=FRAGILE_SYS_PATH.code,
        severity=Severity.WARNING,
        subject="code roots",
        message=message,
        cause=cause,
        detail=tuple(detail),
        fix_hint=SUGGESTION,
    )


CHECK = Check(name="sys_path_hacks", codes=(FRAGILE_SYS_PATH,), run=run)
