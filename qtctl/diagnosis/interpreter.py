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


ARG_OPTIONS = frozenset("cmWX")  # short options whose value is attached (-Wignore) or the next word
LONG_ARG_OPTIONS = frozenset({"--check-hash-based-pycs"})


@dataclass(frozen=True)
class PythonCommand:
    """What `python3 ARGS` runs, read as CPython reads its command line: a script, a `-m` module,
    inline `-c` code (all '' / False when it runs none of them, e.g. stdin)."""

    script: str = ""
    module: str = ""
    inline: bool = False


def python_command(args: list[str]) -> PythonCommand:
    """Parse the interpreter's options as CPython does: `-W`, `-X`, `-c`, `-m` and
    `--check-hash-based-pycs` take a value (attached or the next word), short flags combine
    (`-uB`, `-OO`, `-uWignore`), `--` ends the options; the first other word is the script."""
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            return PythonCommand(script=args[i + 1] if i + 1 < len(args) else "")
        if arg == "-" or not arg.startswith("-"):
            return PythonCommand(script="" if arg == "-" else arg)
        if arg.startswith("--"):
            takes = arg in LONG_ARG_OPTIONS  # `--opt=value` carries its value
            i += 2 if takes else 1
            continue
        flag, value = _short_option(arg)
        if flag and not value:
            i += 1
            value = args[i] if i < len(args) else ""
        if flag == "c":
            return PythonCommand(inline=True)
        if flag == "m":
            return PythonCommand(module=value)
        i += 1
    return PythonCommand()


def _short_option(arg: str) -> tuple[str, str]:
    """A group of short flags (`-uB`, `-Xdev`): the option in it that takes a value and the
    value attached to it ('' when the next word is the value); ('', '') for plain flags."""
    for index, char in enumerate(arg[1:], start=2):
        if char in ARG_OPTIONS:
            return char, arg[index:]
    return "", ""
