"""What a Python interpreter brings by itself: its sys.path and its stdlib, probed in an isolated
subprocess (-I: no PYTHONPATH, no user site, no script directory) that imports nothing of ours."""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from functools import lru_cache

PROBE = (
    "import sys, json; print(json.dumps({'path': [p for p in sys.path if p], "
    "'stdlib': sorted(getattr(sys, 'stdlib_module_names', ())), "
    "'builtins': sorted(sys.builtin_module_names), 'version': sys.version.split()[0]}))"
)
TIMEOUT = 15


@dataclass(frozen=True)
class Interpreter:
    """An interpreter's own import world."""

    executable: str
    path: tuple[str, ...]
    stdlib: frozenset[str]
    version: str
    error: str = ""


@lru_cache(maxsize=64)
def probe(executable: str, home: str = "") -> Interpreter:
    """Probe once per (interpreter, PYTHONHOME); a broken interpreter comes back with an error."""
    env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}
    if home:
        env["PYTHONHOME"] = home
    if not os.path.exists(executable):
        return Interpreter(executable, (), frozenset(), "", f"{executable} does not exist")
    try:
        res = subprocess.run(
            [executable, "-I", "-c", PROBE],
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            env=env,
            cwd="/",
        )
        doc = json.loads(res.stdout)
    except (OSError, subprocess.TimeoutExpired, ValueError) as exc:
        return Interpreter(executable, (), frozenset(), "", f"cannot run {executable}: {exc}")
    names = frozenset(doc["stdlib"]) | frozenset(doc["builtins"])
    return Interpreter(executable, tuple(doc["path"]), names, doc["version"])
