"""What each fleet unit really executes: the program, and the script an interpreter runs."""

from __future__ import annotations

import os
import shlex
from collections.abc import Sequence
from dataclasses import dataclass

from qtctl.diagnosis.unit_file import (
    all_values,
    drop_in_paths,
    effective,
    parse,
    unit_files_on_disk,
)

SHELLS = frozenset({"sh", "bash", "dash", "zsh", "ksh"})
EXEC_PREFIXES = "@-:+!|"


@dataclass(frozen=True)
class ExecTarget:
    """One ExecStart= of a unit."""

    unit: str
    program: str
    script: str  # the file whose bytes are interpreted ('' when it is a binary or a -m module)
    direct: bool  # the program itself is the script (needs +x and a valid shebang)


def exec_targets(patterns: Sequence[str]) -> list[ExecTarget]:
    """ExecStart targets of every installed fleet unit, read from its unit files on disk."""
    targets = []
    for name, fragment in sorted(unit_files_on_disk(patterns).items()):
        files = [parse(p) for p in [fragment, *drop_in_paths(name)]]
        workdir = effective(files, "Service", "WorkingDirectory").lstrip("-")
        for directive in all_values(files, "Service", "ExecStart"):
            target = _target(name, directive.value, workdir)
            if target:
                targets.append(target)
    return targets


def working_directories(patterns: Sequence[str]) -> list[str]:
    """The WorkingDirectory= of every installed fleet unit that sets one."""
    found = []
    for name, fragment in sorted(unit_files_on_disk(patterns).items()):
        files = [parse(p) for p in [fragment, *drop_in_paths(name)]]
        workdir = effective(files, "Service", "WorkingDirectory").lstrip("-")
        if workdir.startswith("/"):
            found.append(workdir)
    return found


def _target(unit: str, command: str, workdir: str) -> ExecTarget | None:
    try:
        argv = shlex.split(command.lstrip(EXEC_PREFIXES))
    except ValueError:
        return None
    if not argv:
        return None
    program = argv[0]
    base = os.path.basename(program)
    if base in SHELLS or base.startswith("python"):
        script = _script_argument(argv[1:], workdir)
        return ExecTarget(unit, program, script, direct=False)
    return ExecTarget(unit, program, program if _is_script(program) else "", direct=True)


def _script_argument(args: list[str], workdir: str) -> str:
    for arg in args:
        if arg == "-m" or arg == "-c":
            return ""  # a module or inline code: no script file
        if arg.startswith("-"):
            continue
        return arg if os.path.isabs(arg) else os.path.join(workdir or "/", arg)
    return ""


def _is_script(path: str) -> bool:
    try:
        with open(path, "rb") as handle:
            head = handle.read(5)
    except OSError:
        return False
    return head.startswith((b"#!", b"\xef\xbb\xbf#!"))


def shebang(path: str) -> list[str]:
    """The shebang line split into words (CR kept, so CRLF shows), or []."""
    try:
        with open(path, "rb") as handle:
            first = handle.readline(512)
    except OSError:
        return []
    first = first.removeprefix(b"\xef\xbb\xbf")
    if not first.startswith(b"#!"):
        return []
    return first[2:].rstrip(b"\n").decode("utf-8", "replace").split()
