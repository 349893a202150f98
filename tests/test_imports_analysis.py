"""Import analysis on real files and a real interpreter (fast, no sandbox): path evaluation,
shadowing, robustness against code that does not parse."""

from __future__ import annotations

import ast
import os
from pathlib import Path

import pytest

from qtctl.diagnosis.imports import analyse
from qtctl.diagnosis.python_units import PythonService
from qtctl.diagnosis.sys_path_eval import path_changes

PY = (
    "/usr/bin/python3"
    if os.path.exists("/usr/bin/python3")
    else os.path.realpath(os.sys.executable)
)  # type: ignore[attr-defined]


def service(script: Path, workdir: str = "", **env: str) -> PythonService:
    return PythonService("quantum-x.service", PY, str(script), "", workdir, env)


@pytest.mark.parametrize(
    ("statement", "expected"),
    [
        (
            "sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))",
            "/srv/app",
        ),
        ("sys.path.insert(0, str(Path(__file__).resolve().parents[1]))", "/srv/app"),
        ("sys.path.insert(0, str(pathlib.Path(__file__).parent.parent / 'lib'))", "/srv/app/lib"),
        ("sys.path.append(os.path.join(os.getcwd(), 'shared'))", "/work/shared"),
        ("sys.path.append('/app')", "/app"),
        ("sys.path.append(compute())", None),
    ],
)
def test_static_evaluation_of_sys_path_changes(statement: str, expected: str | None) -> None:
    source = f"import os, sys, pathlib\nfrom pathlib import Path\n{statement}\n"
    [change] = path_changes(ast.parse(source), source, "/srv/app/svc/main.py", "/work")
    assert change.value == expected
    assert change.line == 3


def tree(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def test_shadowing_with_both_copies_on_the_path(tmp_path: Path) -> None:
    tree(
        tmp_path,
        {
            "ai_engine/__init__.py": "",
            "ai_engine/stops.py": "",
            "svc/ai_engine/__init__.py": "",
            "svc/run/main.py": "import os, sys\nsys.path.insert(0, os.path.dirname(os.path.dirname("
            "os.path.abspath(__file__))))\nimport ai_engine.stops\n",
        },
    )
    result = analyse(
        service(tmp_path / "svc/run/main.py", PYTHONPATH=str(tmp_path)), [str(tmp_path)]
    )
    codes = {p.code: p for p in result.problems}
    assert set(codes) == {"QT201", "QT203"}
    assert codes["QT201"].cause.startswith(
        f"shadowed by {tmp_path}/svc/ai_engine (no stops "
        "there), put on sys.path by sys.path hack at line 2"
    )
    assert codes["QT203"].cause.startswith(f"{tmp_path}/svc/ai_engine shadows {tmp_path}/ai_engine")


def test_transitive_first_party_imports_and_relative_imports(tmp_path: Path) -> None:
    tree(
        tmp_path,
        {
            "pkg/__init__.py": "from .core import run\n",
            "pkg/core.py": "from . import helpers\nimport missing_dep\n",
            "pkg/helpers.py": "try:\n    import optional_dep\nexcept ImportError:\n    pass\n",
            "main.py": "import pkg\nimport json\n",
        },
    )
    result = analyse(service(tmp_path / "main.py"), [str(tmp_path)])
    assert [(p.code, p.module, os.path.basename(p.where)) for p in result.problems] == [
        ("QT201", "missing_dep", "core.py:2")
    ]
    assert result.modules_checked == 4


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"print 'hello'\n", "does not parse: Missing parentheses"),
        (b"def broken(:\n", "does not parse: invalid syntax"),
    ],
)
def test_code_that_does_not_parse_is_a_finding(
    tmp_path: Path, content: bytes, message: str
) -> None:
    script = tmp_path / "main.py"
    script.write_bytes(content)
    [problem] = analyse(service(script), [str(tmp_path)]).problems
    assert message in problem.cause


def test_non_utf8_source_and_missing_workdir(tmp_path: Path) -> None:
    script = tmp_path / "main.py"
    script.write_bytes(b"# caf\xe9\nimport json\n")
    result = analyse(service(script, workdir=str(tmp_path / "gone")), [str(tmp_path)])
    assert [p.cause for p in result.problems] == [f"WorkingDirectory {tmp_path}/gone is missing"]


def test_missing_script_and_interpreter(tmp_path: Path) -> None:
    gone = PythonService(
        "quantum-y.service", "/usr/bin/python2.7", str(tmp_path / "x.py"), "", "", {}
    )
    [problem] = analyse(gone, []).problems
    assert problem.cause == "/usr/bin/python2.7 does not exist"
