"""The RL sizing agent: learns position-size multipliers from real closed trades only.

This package's top level never imports torch (only `daemon` and the modules it uses do), so qtctl
can ask whether the agent can run in an install without the `rl` extra: `qtctl run rl-agent` and
`qtctl install rl-agent` then stop with `TORCH_MISSING`, `install --all` and the demo leave the
agent out and say so with the same line.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

TORCH_MISSING = (
    "the RL agent needs torch, which is not installed: pip install 'qtctl[rl]' to include it"
)
NAME = "rl-agent"


def torch_available(venv: str | None = None) -> bool:
    """Whether torch can be imported by this interpreter, or by the python of another venv
    (the one `qtctl install --venv` writes into the units)."""
    if venv is None or Path(venv).resolve() == Path(sys.prefix).resolve():
        return importlib.util.find_spec("torch") is not None
    probe = "import importlib.util, sys; sys.exit(importlib.util.find_spec('torch') is None)"
    python = Path(venv) / "bin" / "python"
    try:
        return subprocess.run([str(python), "-c", probe], timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False  # no interpreter there: render() names the bad --venv
