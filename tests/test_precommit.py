"""The real pre-commit (PyPI) runs this repository's `qtctl-lint` hook, as a fleet repository
would add it: `repo:` a clone of this checkout at its HEAD, the hook env built by pip. It fails
on a CRLF script and a broken unit file with qtctl's findings, and passes once they are fixed.

Slow (pre-commit builds one virtualenv with qtctl and its dependencies, about a minute on two
cores); one env per run, shared by both runs of the test."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.support.lint_tree import write_checkout

PRE_COMMIT = Path(sys.executable).with_name("pre-commit")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not PRE_COMMIT.exists(), reason="pre-commit is in the test extra"),
    pytest.mark.skipif(not shutil.which("git"), reason="needs git"),
]
GIT = ("git", "-c", "user.email=ci@example.org", "-c", "user.name=ci", "-c", "core.autocrlf=false")


def _git(cwd: Path, *args: str) -> str:
    res = subprocess.run([*GIT, *args], cwd=cwd, capture_output=True, text=True, check=True)
    return res.stdout.strip()


def _hook_repo(tmp_path: Path) -> tuple[Path, str]:
    """A clone of this repository at HEAD, its hook file as it is in the working tree (so
    the test checks the file being committed, not only the last commit's)."""
    clone = tmp_path / "qtctl"
    _git(tmp_path, "clone", "-q", str(REPO), str(clone))
    shutil.copy(REPO / ".pre-commit-hooks.yaml", clone / ".pre-commit-hooks.yaml")
    if _git(clone, "status", "--porcelain"):
        _git(clone, "commit", "-q", "-am", "the hook file of the working tree")
    return clone, _git(clone, "rev-parse", "HEAD")


def _run(fleet: Path, home: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PRE_COMMIT_HOME": str(home), "NO_COLOR": "1", "COLUMNS": "200"}
    return subprocess.run(
        [str(PRE_COMMIT), "run", "--all-files", "--color", "never"],
        cwd=fleet,
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
    )


def test_pre_commit_fails_on_the_findings_then_passes(tmp_path: Path) -> None:
    clone, rev = _hook_repo(tmp_path)
    fleet = write_checkout(tmp_path / "fleet", broken=True)
    (fleet / ".pre-commit-config.yaml").write_text(
        f"repos:\n- repo: {clone}\n  rev: {rev}\n  hooks:\n  - id: qtctl-lint\n"
    )
    _git(fleet, "init", "-q")
    _git(fleet, "add", "-A")
    _git(fleet, "commit", "-q", "-m", "the fleet as deployed")
    failed = _run(fleet, tmp_path / "cache")
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "qtctl lint" in failed.stdout and "Failed" in failed.stdout
    for line in (
        "units/quantum-ai.service:11: QT104 MemoryMax='2G # two gigabytes': systemd has no "
        "inline comments; the value is invalid or carries the comment as data "
        "(quantum-ai.service)",
        "scripts/start-ai.sh:1: QT301 scripts/start-ai.sh has CRLF line endings (2 of 2 "
        "lines): the unit fails to run it (quantum-ai.service)",
        "Found 8 problems.",
    ):
        assert line in failed.stdout.splitlines(), failed.stdout
    write_checkout(fleet, broken=False)  # the same files, fixed
    _git(fleet, "add", "-A")
    _git(fleet, "commit", "-q", "-m", "fixed")
    passed = _run(fleet, tmp_path / "cache")
    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert [line for line in passed.stdout.splitlines() if line.startswith("qtctl lint")] == [
        "qtctl lint...............................................................Passed"
    ]
