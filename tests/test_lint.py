"""The code base stays lint-clean (ruff) and type-clean (mypy): drift fails CI, not review."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_ruff_is_clean() -> None:
    ruff = shutil.which("ruff", path=str(Path(sys.executable).parent)) or "ruff"
    res = subprocess.run(
        [ruff, "check", "qtctl", "checks", "daemons", "tests", "bench"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 0, res.stdout


def test_mypy_strict_is_clean() -> None:
    """qtctl/, checks/ and daemons/ type-check under --strict (config in pyproject.toml)."""
    res = subprocess.run(
        [sys.executable, "-m", "mypy"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert res.returncode == 0, res.stdout[-3000:]
