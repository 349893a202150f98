"""The CLI start-up path stays light: no torch, numpy, pystemd or redis for --version / --help."""

from __future__ import annotations

import subprocess
import sys

import pytest

HEAVY = ("torch", "numpy", "pystemd", "redis", "pydantic")
PROBE = """
import sys
from qtctl.cli.app import main
try:
    main({argv!r})
finally:
    heavy = sorted(m for m in sys.modules if m.split('.')[0] in {heavy!r})
    sys.__stderr__.write('HEAVY=' + ','.join(heavy) + '\\n')
"""


@pytest.mark.parametrize("argv", [["--version"], ["doctor", "--help"], ["--help"]])
def test_startup_imports_nothing_heavy(argv: list[str]) -> None:
    code = PROBE.format(argv=argv, heavy=HEAVY)
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert "HEAVY=\n" in res.stderr, res.stderr
