"""`qtctl lint` on a checkout, through the CLI: what the incident's repository showed before
deploy, found at its file and line; the fixed checkout gives nothing; mistakes exit 2."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from qtctl.engine.report import SCHEMA
from tests.support.lint_tree import lint, write_checkout


def _findings(cwd: Path, *args: str) -> tuple[int, list[tuple[str, str, str, int, str]]]:
    res = lint(cwd, "--format", "json", *args)
    doc = json.loads(res.stdout)
    assert doc["tool"] == "lint" and doc["schema"] == SCHEMA
    rows = [
        (f["code"], f["subject"], f["location"]["path"], f["location"]["line"], f["cause"])
        for f in doc["findings"]
    ]
    return res.returncode, rows


def test_the_incidents_checkout_is_caught_before_deploy(tmp_path: Path) -> None:
    write_checkout(tmp_path, broken=True)
    code, rows = _findings(tmp_path)
    assert code == 1
    ai = "quantum-ai.service"
    assert rows == [
        ("QT104", ai, "units/quantum-ai.service", 11, "inline-comment"),
        ("QT104", ai, "units/quantum-ai.service", 0, "requires-missing"),
        ("QT104", ai, "units/quantum-ai.service", 13, "unknown-key"),
        ("QT104", ai, "units/quantum-ai.service", 0, "no-limits"),
        ("QT301", ai, "scripts/start-ai.sh", 1, "crlf"),
        ("QT202", "services/api/main.py", "services/api/main.py", 3, "file-relative"),
        ("QT201", "quantum-api.service", "services/api/main.py", 5, "import-error"),
        ("QT703", "deploy/ai.env", "deploy/ai.env", 1, "inline-comment"),
    ]


def test_the_fixed_checkout_has_no_finding(tmp_path: Path) -> None:
    """Requires= of a unit in the tree and of a systemd target, a template, a -m service,
    a third-party import, PYTHONPATH mapped onto the checkout: nothing to say."""
    write_checkout(tmp_path, broken=False)
    res = lint(tmp_path)
    assert (res.returncode, res.stderr) == (0, "")
    assert res.stdout.strip().splitlines()[-1] == "All checks passed."
    assert _findings(tmp_path) == (0, [])


def test_concise_lines_and_a_folder_argument(tmp_path: Path) -> None:
    write_checkout(tmp_path / "repo", broken=True)
    res = lint(tmp_path, "--format", "concise", "--select", "QT301,QT703", "repo")
    assert res.returncode == 1
    assert res.stdout.splitlines() == [
        "repo/scripts/start-ai.sh:1: QT301 repo/scripts/start-ai.sh has CRLF line endings "
        "(2 of 2 lines): the unit fails to run it (quantum-ai.service)",
        "repo/deploy/ai.env:1: QT703 API_KEY includes the comment '# the key': systemd has no "
        "inline comments",
        "Found 2 problems.",
    ]


def test_files_named_are_linted_in_the_checkout(tmp_path: Path) -> None:
    """As an editor or a hook passes them: only those files are reported, and a Requires= of
    a unit file the tree has but the command did not name is not missing."""
    write_checkout(tmp_path, broken=True)
    names = ["units/quantum-ai.service", "services/api/main.py", "notes.txt"]
    (tmp_path / "notes.txt").write_bytes(b"a\r\nb\n")
    code, rows = _findings(tmp_path, *names)
    assert code == 1
    assert [(r[0], r[2], r[4]) for r in rows] == [
        ("QT104", "units/quantum-ai.service", "inline-comment"),
        ("QT104", "units/quantum-ai.service", "requires-missing"),
        ("QT104", "units/quantum-ai.service", "unknown-key"),
        ("QT104", "units/quantum-ai.service", "no-limits"),
        ("QT301", "scripts/start-ai.sh", "crlf"),
        ("QT302", "notes.txt", "crlf-other"),
        ("QT202", "services/api/main.py", "file-relative"),
        ("QT703", "deploy/ai.env", "inline-comment"),
    ]


def test_hostile_unit_files_are_not_read(tmp_path: Path) -> None:
    """A FIFO named like a unit file does not hang lint, a symlink is never followed (its
    target's lines could be quoted), and an alias symlink still names the unit it is."""
    write_checkout(tmp_path, broken=False)
    secret = tmp_path / "secret.txt"
    secret.write_text("hunter2 is the password\n")
    units = tmp_path / "units"
    os.mkfifo(units / "quantum-fifo.service")
    (units / "quantum-leak.service").symlink_to(secret)
    (units / "quantum-alias.service").symlink_to("quantum-api.service")
    ai = units / "quantum-ai.service"
    ai.write_text(ai.read_text().replace("Requires=", "Requires=quantum-alias.service "))
    res = lint(tmp_path, "--format", "json")
    assert res.returncode == 0, res.stdout
    assert "hunter2" not in res.stdout and json.loads(res.stdout)["findings"] == []


def test_a_script_without_exec_bit_and_a_unit_name_twice(tmp_path: Path) -> None:
    write_checkout(tmp_path, broken=False)
    (tmp_path / "scripts/start-ai.sh").chmod(0o644)
    copy = tmp_path / "deploy/units/quantum-api.service"
    copy.parent.mkdir(parents=True)
    copy.write_text((tmp_path / "units/quantum-api.service").read_text() + "Nice=5\n")
    same = tmp_path / "old/quantum-api.service"
    same.parent.mkdir()
    shutil.copy(copy, same)  # same content as the first one lint meets: not a conflict
    code, rows = _findings(tmp_path, "--select", "QT104,QT303")
    assert code == 1
    assert rows == [
        ("QT104", "quantum-api.service", "units/quantum-api.service", 0, "duplicate-unit"),
        ("QT303", "quantum-ai.service", "scripts/start-ai.sh", 0, "no-exec-bit"),
    ] or rows == [
        ("QT104", "quantum-api.service", "old/quantum-api.service", 0, "duplicate-unit"),
        ("QT104", "quantum-api.service", "units/quantum-api.service", 0, "duplicate-unit"),
        ("QT303", "quantum-ai.service", "scripts/start-ai.sh", 0, "no-exec-bit"),
    ]


def test_path_map_maps_the_deploy_paths(tmp_path: Path) -> None:
    """Code under src/: the default map (fleet.code_roots -> the checkout) says the
    WorkingDirectory is missing; `--path-map` maps it and PYTHONPATH onto src/."""
    write_checkout(tmp_path, broken=False)
    unit = tmp_path / "units/quantum-api.service"
    text = unit.read_text().replace("quantum_trader", "quantum_trader/app")
    unit.write_text(text)
    (tmp_path / "src").mkdir()
    for name in ("services", "ai_engine"):
        (tmp_path / name).rename(tmp_path / "src" / name)
    code, rows = _findings(tmp_path, "--select", "QT104,QT2")
    assert code == 1
    assert [r[4] for r in rows] == ["working-directory", "pythonpath", "exec-missing"]
    mapped = "/home/qt/quantum_trader/app=src,/home/qt/quantum_trader=."
    assert _findings(tmp_path, "--select", "QT104,QT2", "--path-map", mapped) == (0, [])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nowhere"], "qtctl: error: no such file or folder: nowhere"),
        (
            ["--path-map", "relative=."],
            "qtctl: error: lint.path_map: expected /DEPLOY/PATH=CHECKOUT/PATH, got 'relative=.'",
        ),
        (
            ["--format", "xml"],
            "qtctl: error: --format must be one of table, json, markdown, full, "
            "concise, json-lines, github, gitlab, sarif, junit, got 'xml'",
        ),
    ],
)
def test_mistakes_exit_2_with_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    res = lint(tmp_path, *args)
    assert (res.returncode, res.stdout, res.stderr.strip()) == (2, "", message)


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="needs systemd-analyze")
def test_systemd_itself_ignores_what_lint_calls_an_unknown_key(tmp_path: Path) -> None:
    """The claim checked against the real systemd: `systemd-analyze verify` on the same file
    says it ignores Restrat= (and says nothing of Restart=, of which lint says nothing)."""
    (tmp_path / "units").mkdir()
    unit = tmp_path / "units/demo-typo.service"
    unit.write_text(
        "[Service]\nExecStart=/bin/true\nRestrat=always\nRestart=on-failure\n"
        "MemoryMax=1G\nCPUQuota=10%\nType=oneshot\n"
    )
    verify = subprocess.run(
        ["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60
    )
    said = "Unknown key 'Restrat' in section [Service], ignoring."
    assert verify.stderr.splitlines() == [f"{unit}:3: {said}"]
    res = lint(tmp_path, "--format", "concise")
    assert (res.returncode, res.stdout.splitlines()) == (
        0,
        [f"units/demo-typo.service:3: QT104 {said} (demo-typo.service)", "Found 1 problem."],
    )


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="needs systemd-analyze")
def test_an_exec_start_the_checkout_lacks(tmp_path: Path) -> None:
    """verify on this host (where the deploy path does not exist either) refuses the command;
    lint says so from the checkout. With the `-` prefix verify says nothing, nor does lint."""
    (tmp_path / "units").mkdir()
    body = "[Service]\nExecStart={}/home/qt/quantum_trader/gone.sh\nType=oneshot\n"
    strict = tmp_path / "units/demo-strict.service"
    strict.write_text(body.format(""))
    lenient = tmp_path / "units/demo-lenient.service"
    lenient.write_text(body.format("-"))
    verify = subprocess.run(
        ["systemd-analyze", "verify", str(strict), str(lenient)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    gone = "/home/qt/quantum_trader/gone.sh"
    assert (
        f"demo-strict.service: Command {gone} is not executable: No such file or directory"
        in verify.stderr
    )
    assert "demo-lenient" not in verify.stderr
    code, rows = _findings(tmp_path, "--select", "QT104")
    missing = [r for r in rows if r[4] == "exec-missing"]
    assert (code, missing) == (
        1,
        [("QT104", "demo-strict.service", "units/demo-strict.service", 0, "exec-missing")],
    )


def test_what_git_ignores_is_not_linted(tmp_path: Path) -> None:
    """A build cache under an ignored folder (a vendored systemd source tree, say) is not the
    fleet's code; the same files outside git are linted."""
    write_checkout(tmp_path, broken=False)
    cache = tmp_path / ".cache/vendor"
    cache.mkdir(parents=True)
    (cache / "broken.service").write_text("Description=no section\n")
    (cache / "crlf.sh").write_bytes(b"echo\r\n")
    (tmp_path / ".gitignore").write_text(".cache/\n")
    before = _findings(tmp_path)
    assert [r[4] for r in before[1]] == ["syntax", "load-error", "crlf-sources"]
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    assert _findings(tmp_path) == (0, [])
    named = _findings(tmp_path, ".cache/vendor/crlf.sh")  # named: linted all the same
    assert [r[4] for r in named[1]] == ["crlf-sources"]


def test_sys_path_words_in_strings_are_no_hack(tmp_path: Path) -> None:
    write_checkout(tmp_path, broken=False)
    (tmp_path / "docs.py").write_text(
        '"""Never write sys.path.insert(0, os.path.dirname(__file__)) here."""\n'
        "import os\nimport sys\n"
        "HINT = 'sys.path.append(__file__)'\n"
        "sys.path.insert(\n    0, os.path.dirname(__file__)\n)\n"
    )
    code, rows = _findings(tmp_path, "--select", "QT202")
    assert (code, [(r[2], r[3]) for r in rows]) == (0, [("docs.py", 5)])


@pytest.mark.parametrize(
    "options", ["-W ignore::DeprecationWarning -X dev", "-X dev -uB", "-Wignore -OO"]
)
def test_interpreter_options_that_take_a_value_are_read_as_python_reads_them(
    tmp_path: Path, options: str
) -> None:
    """`python3 -W ARG -X dev main.py` runs main.py: the option values are no script (the
    outside review's F1/F7, on the checkout as on the host)."""
    write_checkout(tmp_path, broken=False)
    unit = tmp_path / "units/quantum-api.service"
    unit.write_text(unit.read_text().replace("/usr/bin/python3 ", f"/usr/bin/python3 {options} "))
    assert _findings(tmp_path, "--select", "QT104,QT2") == (0, [])
    missing = unit.read_text().replace("services/api/main.py", "services/api/gone.py")
    unit.write_text(missing)
    code, rows = _findings(tmp_path, "--select", "QT104,QT2")
    assert code == 1 and [r[4] for r in rows] == ["exec-missing"], rows
