"""How each Python service of the fleet really starts: interpreter, script or -m module,
WorkingDirectory and environment (Environment= and EnvironmentFile=), read from its unit files."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from qtctl.adapters import safe_walk
from qtctl.diagnosis.env_file import environment as env_file_variables
from qtctl.diagnosis.exec_targets import plain_env, resolve
from qtctl.diagnosis.interpreter import python_command
from qtctl.diagnosis.unit_load import LoadedUnit, fleet_on_disk, working_directory

MAX_ENV_BYTES = 4 * 2**20  # as QT703 reads env files


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


def python_services(
    patterns: Sequence[str], loaded: Sequence[LoadedUnit] | None = None
) -> list[PythonService]:
    """Every installed fleet service (template instances included) whose ExecStart runs a
    Python interpreter, read as systemd reads it (specifiers expanded); `loaded` is the run's
    `fleet_on_disk(patterns)` when the caller already has it."""
    units = fleet_on_disk(patterns) if loaded is None else loaded
    return [s for s in map(_service, units) if s is not None]


def _service(unit: LoadedUnit) -> PythonService | None:
    commands = [plain_env([c.path, *c.argv[1:]]) for c in unit.commands("ExecStart")]
    python = [argv for argv in commands if os.path.basename(argv[0]).startswith("python")]
    if not python:
        return None
    workdir = working_directory(unit)
    script, module = _target(python[0][1:], workdir)
    if not script and not module:
        return None
    interpreter = resolve(python[0][0])  # `env python3`: found in systemd's search path
    return PythonService(
        unit.name, interpreter, script, module, workdir, environment(unit), _origins(unit)
    )


def _target(args: list[str], workdir: str) -> tuple[str, str]:
    command = python_command(args)  # as CPython reads it: `-W ARG`, `-X ARG`, `-uB`, ...
    if not command.script:
        return "", command.module
    script = command.script
    return (script if os.path.isabs(script) else os.path.join(workdir or "/", script)), ""


def environment(unit: LoadedUnit) -> dict[str, str]:
    """Environment= assignments, then EnvironmentFile= contents, which override them."""
    env = unit.environment()
    for path, _, _ in unit.environment_files():
        env.update(read_env_file(path))
    return env


def _origins(unit: LoadedUnit) -> dict[str, str]:
    """Which EnvironmentFile sets each variable (those override Environment= in systemd)."""
    origins: dict[str, str] = {}
    for path, _, _ in unit.environment_files():
        origins.update(dict.fromkeys(read_env_file(path), path))
    return origins


def read_env_file(path: str) -> dict[str, str]:
    """The variables an EnvironmentFile= gives the unit, read exactly as systemd reads them
    (none from a file systemd refuses)."""
    # Followed as systemd follows it (what the unit really gets), but never a FIFO or device.
    return env_file_variables(safe_walk.read_head(path, MAX_ENV_BYTES))
