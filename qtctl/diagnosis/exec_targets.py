"""What each fleet unit really executes: the program, and who reads the script's bytes.

A script's line endings matter to the kernel (a shebang line ending in CR names `python3\\r`) and
to shells (`$'\\r': command not found`); Python itself reads CRLF source as LF (universal
newlines), so a script handed to an interpreter is read by "python", not by the kernel."""

from __future__ import annotations

import dataclasses
import os
import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass

from qtctl.adapters import safe_walk
from qtctl.diagnosis.interpreter import python_command
from qtctl.diagnosis.unit_load import LoadedUnit, fleet_on_disk, working_directory
from qtctl.diagnosis.unit_values import ExecCommand

SHELLS = frozenset({"sh", "bash", "dash", "zsh", "ksh"})
SEARCH_PATH = ("/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin")
EXEC_KEYS = ("ExecStartPre", "ExecStart", "ExecStartPost")
SOURCE_WORDS = frozenset({"source", "."})
INLINE_FLAG = re.compile(r"-[a-zA-Z]*c[a-zA-Z]*")  # -c, -lc, -ec: the next word is the code
KERNEL, SHELL, PYTHON = "kernel", "shell", "python"


@dataclass(frozen=True)
class ExecTarget:
    """One command of a unit's ExecStartPre=/ExecStart=/ExecStartPost=."""

    unit: str
    program: str
    script: str  # the file whose bytes are interpreted ('' when it is a binary or a -m module)
    direct: bool  # the program itself is the script (needs +x and a valid shebang)
    reader: str = KERNEL  # who reads the script's bytes: "kernel", "shell" or "python"
    optional: bool = False  # the `-` prefix: systemd carries on when this command fails

    @property
    def crlf_breaks_it(self) -> bool:
        """CR at line ends breaks the kernel's shebang and shells; Python reads it fine."""
        return self.reader in (KERNEL, SHELL)


def exec_targets(
    patterns: Sequence[str], loaded: Sequence[LoadedUnit] | None = None
) -> list[ExecTarget]:
    """Exec targets of every installed fleet unit and enabled template instance, read from its
    unit files on disk as systemd reads them (specifiers expanded, `;` splits); `loaded` is the
    run's `fleet_on_disk(patterns)` when the caller already has it."""
    targets = []
    for unit in fleet_on_disk(patterns) if loaded is None else loaded:
        workdir = working_directory(unit)
        for command in _commands(unit):
            optional = "-" in command.prefixes
            targets += [
                dataclasses.replace(t, optional=optional)
                for t in _targets(unit.name, command, workdir)
            ]
    return targets


def working_directories(
    patterns: Sequence[str], loaded: Sequence[LoadedUnit] | None = None
) -> list[str]:
    """The WorkingDirectory= of every installed fleet unit that sets one (`loaded`: as above)."""
    units = fleet_on_disk(patterns) if loaded is None else loaded
    return [d for d in map(working_directory, units) if d.startswith("/")]


def _commands(unit: LoadedUnit) -> list[ExecCommand]:
    return [c for key in EXEC_KEYS for c in unit.commands(key)]


def _targets(unit: str, command: ExecCommand, workdir: str) -> list[ExecTarget]:
    argv = unwrap_env([command.path, *command.argv[1:]])
    if not argv:
        return []
    program = resolve(argv[0])
    base = os.path.basename(program)
    if base in SHELLS:
        return _shell_targets(unit, program, argv[1:], workdir)
    if base.startswith("python"):
        script = python_command(argv[1:]).script
        script = _absolute(script, workdir) if script else ""
        return [ExecTarget(unit, program, script, direct=False, reader=PYTHON)]
    script = program if _is_script(program) else ""
    return [ExecTarget(unit, program, script, direct=True, reader=KERNEL)]


def unwrap_env(argv: list[str]) -> list[str]:
    """`env [-opts] [VAR=value...] PROGRAM ARGS`: the program env runs, and its arguments."""
    if not argv or os.path.basename(argv[0]) != "env":
        return argv
    rest = argv[1:]
    while rest and (rest[0].startswith("-") or "=" in rest[0]):
        rest = rest[1:]
    return rest


def plain_env(argv: list[str]) -> list[str]:
    """`env PROGRAM ARGS` without options or assignments: the program's argv; any other argv as
    it is (an `env -i`/`VAR=x` wrapper changes the environment, which callers must not guess)."""
    plain = len(argv) > 1 and not argv[1].startswith("-") and "=" not in argv[1]
    return argv[1:] if plain and os.path.basename(argv[0]) == "env" else argv


def _shell_targets(unit: str, shell: str, args: list[str], workdir: str) -> list[ExecTarget]:
    """`bash script.sh` (the shell reads it), `bash -c '. env.sh; exec x'` (each sourced file)."""
    index = next((i for i, a in enumerate(args) if INLINE_FLAG.fullmatch(a)), -1)
    if index < 0:
        script = _script_argument(args, workdir)
        return [ExecTarget(unit, shell, script, direct=False, reader=SHELL)]
    code = args[index + 1] if index + 1 < len(args) else ""
    return [
        ExecTarget(unit, shell, _absolute(path, workdir), direct=False, reader=SHELL)
        for path in sourced_files(code)
    ]


def sourced_files(code: str) -> list[str]:
    """The files a `sh -c` string sources (`. FILE`, `source FILE`), as written."""
    try:
        words = shlex.split(code.replace(";", " ; ").replace("&&", " && "))
    except ValueError:
        return []
    return [words[i + 1] for i, w in enumerate(words[:-1]) if w in SOURCE_WORDS]


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
        return _absolute(arg, workdir)
    return ""


def _absolute(path: str, workdir: str) -> str:
    return path if os.path.isabs(path) else os.path.join(workdir or "/", path)


def _is_script(path: str) -> bool:
    if not os.path.isabs(path):
        return False  # not found in systemd's search path: nothing to read
    head = safe_walk.read_head(path, 5)  # a FIFO planted as the script must not hang doctor
    return head.startswith((b"#!", b"\xef\xbb\xbf#!"))


def cr_breaks(target: ExecTarget, head: bytes) -> bool:
    """Whether CR line ends (or a BOM) in the file `target` runs break it, given the file's first
    bytes: always for a shell; for the kernel, when the shebang line ends in CR or a BOM hides
    it, else when the interpreter it names is not Python (which reads CRLF source as LF)."""
    if target.reader != KERNEL:
        return target.reader == SHELL
    first = head.removeprefix(b"\xef\xbb\xbf").split(b"\n", 1)[0]
    if head.startswith(b"\xef\xbb\xbf") or first.endswith(b"\r"):
        return True
    words = first[2:].decode("utf-8", "replace").split()
    if len(words) > 1 and os.path.basename(words[0]) == "env":
        words = words[1:]
    return not (words and os.path.basename(words[0]).startswith("python"))


def shebang(path: str) -> list[str]:
    """The shebang line split into words (CR kept, so CRLF shows), or []."""
    head = safe_walk.read_head(path, 512)
    first = head[: head.find(b"\n") + 1] if b"\n" in head else head
    first = first.removeprefix(b"\xef\xbb\xbf")
    if not first.startswith(b"#!"):
        return []
    return first[2:].rstrip(b"\n").decode("utf-8", "replace").split()
