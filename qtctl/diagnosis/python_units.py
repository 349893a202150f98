"""How each Python service of the fleet really starts: interpreter, script or -m module,
WorkingDirectory and environment (Environment= and EnvironmentFile=), read from its unit files."""

from __future__ import annotations

import os
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from qtctl.diagnosis.env_file import environment as env_file_variables
from qtctl.diagnosis.unit_file import (
    UnitFile,
    all_values,
    drop_in_paths,
    effective,
    parse,
    unit_files_on_disk,
)

EXEC_PREFIXES = "@-:+!|"


@dataclass(frozen=True)
class PythonService:
    """One Python service unit, as systemd will start it."""

    unit: str
    interpreter: str
    script: str
    module: str
    workdir: str
    env: Mapping[str, str]
    env_files: Mapping[str, str] = field(default_factory=dict)  # variable -> EnvironmentFile

    @property
    def cwd(self) -> str:
        """The directory the process starts in (systemd's default is /)."""
        return self.workdir or "/"


def python_services(patterns: Sequence[str]) -> list[PythonService]:
    """Every installed fleet service whose ExecStart runs a Python interpreter."""
    found = []
    for name, fragment in sorted(unit_files_on_disk(patterns).items()):
        files = [parse(p) for p in [fragment, *drop_in_paths(name)]]
        service = _service(name, files)
        if service:
            found.append(service)
    return found


def _service(name: str, files: list[UnitFile]) -> PythonService | None:
    command = effective(files, "Service", "ExecStart")
    try:
        argv = shlex.split(command.lstrip(EXEC_PREFIXES))
    except ValueError:
        return None
    if not argv or not os.path.basename(argv[0]).startswith("python"):
        return None
    workdir = effective(files, "Service", "WorkingDirectory").lstrip("-")
    script, module = _target(argv[1:], workdir)
    if not script and not module:
        return None
    return PythonService(
        name, argv[0], script, module, workdir, environment(files), _file_origins(files)
    )


def _target(args: list[str], workdir: str) -> tuple[str, str]:
    it = iter(args)
    for arg in it:
        if arg == "-m":
            return "", next(it, "")
        if arg == "-c":
            return "", ""
        if arg.startswith("-"):
            continue
        return (arg if os.path.isabs(arg) else os.path.join(workdir or "/", arg)), ""
    return "", ""


def environment(files: list[UnitFile]) -> dict[str, str]:
    """Environment= assignments and EnvironmentFile= contents, later ones winning."""
    env: dict[str, str] = {}
    for d in all_values(files, "Service", "EnvironmentFile"):
        env.update(read_env_file(d.value.lstrip("-")))
    for d in all_values(files, "Service", "Environment"):
        try:
            words = shlex.split(d.value)
        except ValueError:
            continue
        env.update(w.split("=", 1) for w in words if "=" in w)  # type: ignore[misc]
    return env


def _file_origins(files: list[UnitFile]) -> dict[str, str]:
    """Which EnvironmentFile sets each variable (those override Environment= in systemd)."""
    origins: dict[str, str] = {}
    for d in all_values(files, "Service", "EnvironmentFile"):
        path = d.value.lstrip("-")
        origins.update(dict.fromkeys(read_env_file(path), path))
    return origins


def read_env_file(path: str) -> dict[str, str]:
    """The variables an EnvironmentFile= gives the unit, read exactly as systemd reads them."""
    try:
        with open(path, encoding="utf-8", errors="replace", newline="") as handle:
            return env_file_variables(handle.read())
    except OSError:
        return {}
