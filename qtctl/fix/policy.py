"""Safety rules: what fix must never do to a live trading fleet, and the rule that held it."""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from qtctl.adapters import safe_walk
from qtctl.config import Config
from qtctl.diagnosis.env_files import env_uses, sourced_by
from qtctl.diagnosis.exec_targets import ExecTarget, exec_targets
from qtctl.diagnosis.fleet import FleetUnit
from qtctl.diagnosis.unit_file import UNIT_DIRS


@dataclass(frozen=True)
class FixOptions:
    """What the operator allowed on the command line."""

    apply: bool = False
    unsafe: bool = False
    only: tuple[str, ...] = ()


# UnitFileState values under which systemd itself starts a unit. `indirect` only with a loaded
# unit that pulls it in: systemd also says `indirect` for a disabled unit with a stray alias.
STARTABLE = frozenset({"enabled", "enabled-runtime", "static", "indirect", "generated"})
PULLED_IN_BY = ("WantedBy", "RequiredBy", "BoundBy", "UpheldBy", "TriggeredBy")


def never_restart(unit: FleetUnit, config: Config) -> str:
    """Why fix must never restart `unit`, whatever the options, or ''."""
    state = unit.file_state
    if state.startswith("masked"):
        return "unit is masked: fix never unmasks or starts a masked unit"
    if state == "disabled":
        return "unit is disabled: fix never starts a disabled unit"
    if state not in STARTABLE:
        return (
            f"unit is {state or 'without a unit file state'}: fix only starts units that are "
            "enabled, static, indirect or generated"
        )
    if state == "indirect" and not any(unit.props.get(p) for p in PULLED_IN_BY):
        return (
            "unit is indirect and no loaded unit wants, requires or triggers it: nothing "
            "enabled starts it, so fix does not either"
        )
    match = protected_match(names_of(unit), config)
    return f"protected unit ({match}): restart it by hand if you are sure" if match else ""


def never_change(name: str, units: Mapping[str, FleetUnit], config: Config) -> str:
    """Why fix must not change the unit `name` at all (drop-ins, patches, its files), or ''."""
    unit = find_unit(units, name)
    names = [*(unit.names if unit else [name]), *aliases_on_disk(name)]
    if "@." in name:  # a template: a drop-in for it is a drop-in for every instance
        names += [n for u in units.values() if template_of(u.name) == name for n in u.names]
    match = protected_match([*names, *filter(None, map(template_of, names))], config)
    if match:
        return f"protected unit ({match}): fix changes nothing of a protected unit; do it by hand"
    state = unit.file_state if unit else ""
    if state.startswith("masked"):
        return "unit is masked: fix changes nothing of a masked unit (no drop-in, patch, file)"
    if state == "disabled":
        return "unit is disabled: fix changes nothing of a disabled unit (no drop-in, patch, file)"
    return ""


def aliases_on_disk(name: str) -> list[str]:
    """Symlinks in the unit directories that name the unit file `name` under another name: the
    aliases of a unit systemd has not loaded (and so reports no Names for)."""
    found = []
    for base in UNIT_DIRS:
        try:
            entries = os.listdir(base)
        except OSError:
            continue
        links = [e for e in entries if e != name and os.path.islink(os.path.join(base, e))]
        found += [e for e in links if os.path.basename(os.path.realpath(f"{base}/{e}")) == name]
    return found


def restart_permission(unit: FleetUnit, options: FixOptions, live: str) -> str:
    """What the operator still has to say before `unit` may be restarted, or ''."""
    if not options.unsafe:
        return "restarting a service needs --unsafe"
    if live and not named(unit, options):
        return f"live mode: name the unit to restart it (--only {unit.name}); {live}"
    return ""


def stream_permission(stream: str, options: FixOptions, live: str) -> str:
    """In live mode, a repair that changes what consumers of `stream` read needs it named."""
    if live and stream not in options.only:
        return (
            f"live mode: trading consumers read {stream}: name the stream to change it "
            f"(--only {stream}); {live}"
        )
    return ""


def named(unit: FleetUnit, options: FixOptions) -> bool:
    """Whether --only names the unit, by any of its names."""
    return not set(unit.names).isdisjoint(options.only)


def find_unit(units: Mapping[str, FleetUnit], name: str) -> FleetUnit | None:
    """The loaded unit that has `name` among its names (an alias finds the unit)."""
    if name in units:
        return units[name]
    return next((u for u in units.values() if name in u.names), None)


def names_of(unit: FleetUnit) -> tuple[str, ...]:
    """The unit's names (systemd's Names: id and aliases) and the templates they instantiate."""
    templates = [template_of(n) for n in unit.names]
    return tuple(dict.fromkeys([*unit.names, *filter(None, templates)]))


def template_of(name: str) -> str:
    """`a@b.service` -> `a@.service`; '' when `name` is no template instance."""
    prefix, at, rest = name.partition("@")
    instance, dot, suffix = rest.rpartition(".")
    return f"{prefix}@.{suffix}" if at and dot and instance else ""


def protected_match(names: Iterable[str], config: Config) -> str:
    """'NAME matches fleet.protected PATTERN' for the first protected name, or ''."""
    for name in names:
        for pattern in config.fleet.protected:
            if fnmatch.fnmatchcase(name, pattern):
                return f"{name} matches fleet.protected {pattern!r}"
    return ""


def live_mode(config: Config, units: Iterable[FleetUnit]) -> str:
    """Why the fleet counts as trading live ('' when it does not)."""
    if config.fleet.live_mode:
        return "fleet.live_mode = true"
    var, values = config.fleet.live_mode_var, {v.lower() for v in config.fleet.live_mode_values}
    for unit in units:
        for assignment in _environment(unit):
            name, _, value = assignment.partition("=")
            if name == var and value.strip().strip("'\"").lower() in values:
                return f"{var}={value} in the environment of {unit.name}"
    return ""


def _environment(unit: FleetUnit) -> list[str]:
    assignments = [str(a) for a in unit.props.get("Environment") or []]
    for entry in unit.props.get("EnvironmentFiles") or []:
        path = entry[0] if isinstance(entry, list | tuple) else str(entry)
        text = safe_walk.read_head(path, 4 * 2**20).decode("utf-8", "replace")  # never a FIFO
        assignments += [line.strip() for line in text.splitlines() if "=" in line]
    return [a.removeprefix("export ") for a in assignments]


def protected_file(
    paths: Iterable[str],
    units: Mapping[str, FleetUnit],
    config: Config,
    readers: Mapping[FileId, list[tuple[str, str]]] | None = None,
) -> str:
    """Why fix must change none of `paths`: a protected unit (by any of its names) runs or reads
    one of them (its script or program, a file its command or script sources, its
    EnvironmentFile=), whichever finding asks and through whichever other unit; the same file
    is the same inode (a symlink or a hard link is no way round it). `readers`: the run's
    `readers_by_file`. '' when none does."""
    found = readers_by_file(config.fleet.units) if readers is None else readers
    for path in paths:
        for unit, read in found.get(_identity(path), []):
            why = never_change(unit, units, config)
            if why.startswith("protected"):
                return f"{unit} runs or reads {read}: {why}"
    return ""


FileId = tuple[int, int] | str


def readers_by_file(
    patterns: Sequence[str], targets: Sequence[ExecTarget] | None = None
) -> dict[FileId, list[tuple[str, str]]]:
    """(unit, path) of every fleet unit that runs or reads each file as it starts: exec scripts
    and programs, files sourced by its shell commands and scripts, its env files (`targets`:
    the run's `exec_targets(patterns)` when the caller has them)."""
    pairs: set[tuple[str, str]] = set()
    for target in exec_targets(patterns) if targets is None else targets:
        pairs.update((target.unit, f) for f in (target.script, target.program) if f)
        if target.script and target.reader in ("shell", "kernel"):
            pairs.update((target.unit, f) for f in sourced_by(target.script))
    pairs.update((use.unit, use.path) for use in env_uses(patterns))
    found: dict[FileId, list[tuple[str, str]]] = {}
    for unit, path in sorted(pairs):
        found.setdefault(_identity(path), []).append((unit, path))
    return found


def _identity(path: str) -> FileId:
    """The file `path` names: its device and inode, or its real path when it cannot be read."""
    try:
        info = os.stat(path)
    except OSError:
        return os.path.realpath(path)
    return (info.st_dev, info.st_ino)
