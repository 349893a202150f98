"""What each fleet unit really executes: the program, and the script an interpreter runs."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

from qtctl.adapters import safe_walk
from qtctl.diagnosis.unit_load import fleet_on_disk, working_directory
from qtctl.diagnosis.unit_values import ExecCommand

SHELLS = frozenset({"sh", "bash", "dash", "zsh", "ksh"})
SEARCH_PATH = ("/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin")


@dataclass(frozen=True)
class ExecTarget:
    """One ExecStart= of a unit."""

    unit: str
    program: str
    script: str  # the file whose bytes are interpreted ('' when it is a binary or a -m module)
    direct: bool  # the program itself is the script (needs +x and a valid shebang)


def exec_targets(patterns: Sequence[str]) -> list[ExecTarget]:
    """ExecStart targets of every installed fleet unit and enabled template instance, read
    from its unit files on disk as systemd reads them (specifiers expanded, `;` splits)."""
    targets = []
    for unit in fleet_on_disk(patterns):
        workdir = working_directory(unit)
        targets += [_target(unit.name, c, workdir) for c in unit.commands("ExecStart")]
    return targets


def working_directories(patterns: Sequence[str]) -> list[str]:
    """The WorkingDirectory= of every installed fleet unit that sets one."""
    return [d for d in map(working_directory, fleet_on_disk(patterns)) if d.startswith("/")]


def _target(unit: str, command: ExecCommand, workdir: str) -> ExecTarget:
    program = resolve(command.path)
    base = os.path.basename(program)
    if base in SHELLS or base.startswith("python"):
        script = _script_argument(list(command.argv[1:]), workdir)
        return ExecTarget(unit, program, script, direct=False)
    return ExecTarget(unit, program, program if _is_script(program) else "", direct=True)


def resolve(program: str) -> str:
    """A bare program name as systemd finds it, in its fixed search path."""
    if "/" in program:
        return program
    found = (os.path.join(d, program) for d in SEARCH_PATH)
    return next((p for p in found if os.access(p, os.X_OK)), program)


def _script_argument(args: list[str], workdir: str) -> str:
    for arg in args:
        if arg == "-m" or arg == "-c":
            return ""  # a module or inline code: no script file
        if arg.startswith("-"):
            continue
        return arg if os.path.isabs(arg) else os.path.join(workdir or "/", arg)
    return ""


def _is_script(path: str) -> bool:
    head = safe_walk.read_head(path, 5)  # a FIFO planted as the script must not hang doctor
    return head.startswith((b"#!", b"\xef\xbb\xbf#!"))


def shebang(path: str) -> list[str]:
    """The shebang line split into words (CR kept, so CRLF shows), or []."""
    head = safe_walk.read_head(path, 512)
    first = head[: head.find(b"\n") + 1] if b"\n" in head else head
    first = first.removeprefix(b"\xef\xbb\xbf")
    if not first.startswith(b"#!"):
        return []
    return first[2:].rstrip(b"\n").decode("utf-8", "replace").split()
