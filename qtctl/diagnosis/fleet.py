"""The fleet as systemd sees it: matching units with their properties, read once per run."""

from __future__ import annotations

import fnmatch
import functools
import logging
import os
import shutil
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from qtctl.adapters import safe_walk
from qtctl.adapters.journal import JournalBatch, read_events, read_oom_kills, read_units
from qtctl.diagnosis.cause import ExecProbe
from qtctl.diagnosis.exec_targets import SHELLS
from qtctl.diagnosis.imports import Analysis, analyse, clear_caches
from qtctl.diagnosis.python_units import PythonService, python_services
from qtctl.diagnosis.unit_load import LoadedUnit, fleet_on_disk
from qtctl.engine.context import CheckContext
from qtctl.errors import AdapterUnavailable

log = logging.getLogger(__name__)

INFINITY = 2**64 - 1


@dataclass(frozen=True)
class FleetUnit:
    """One fleet unit: its state from ListUnits; its D-Bus properties are read on first use."""

    name: str
    object_path: bytes
    load_state: str
    active_state: str
    sub_state: str
    loader: Callable[[bytes], Mapping[str, Any]] = field(repr=False, compare=False)

    @functools.cached_property
    def props(self) -> Mapping[str, Any]:
        """Unit properties plus the Service ones qtctl reads (on first access)."""
        return self.loader(self.object_path)

    @property
    def names(self) -> tuple[str, ...]:
        """Every name systemd knows the unit by: its id, then its aliases (the Names property)."""
        listed = [str(n) for n in self.props.get("Names") or []]
        return tuple(dict.fromkeys([self.name, *listed]))

    @property
    def file_state(self) -> str:
        """enabled, disabled, masked, static, ... (UnitFileState)."""
        return str(self.props.get("UnitFileState", ""))

    @property
    def invocation(self) -> str:
        """The current (or last) invocation ID as hex."""
        raw = self.props.get("InvocationID") or []
        return bytes(raw).hex() if isinstance(raw, list) else str(raw)

    @property
    def exec_argv(self) -> list[str]:
        """argv of the first ExecStart= command."""
        commands = self.props.get("ExecStart") or []
        return list(commands[0][1]) if commands else []

    @property
    def exec_path(self) -> str:
        """The program of the first ExecStart= command."""
        commands = self.props.get("ExecStart") or []
        return str(commands[0][0]) if commands else ""


def is_fleet(name: str, patterns: Sequence[str]) -> bool:
    """Whether a unit name matches the configured fleet patterns."""
    return any(fnmatch.fnmatchcase(name, p) for p in patterns)


def fleet_units(ctx: CheckContext) -> list[FleetUnit]:
    """Every loaded unit matching fleet.units, with properties (memoized per run)."""
    return ctx.memo("fleet_units", lambda: _load(ctx))  # type: ignore[no-any-return]


def loaded_units(ctx: CheckContext) -> list[LoadedUnit]:
    """Every installed fleet unit loaded from its files on disk (`fleet_on_disk`), once per run:
    the unit-file, import, line-ending and env-file checks share one read and parse."""
    return ctx.memo("fleet_on_disk", lambda: fleet_on_disk(ctx.config.fleet.units))  # type: ignore[no-any-return]


def fleet_python_services(ctx: CheckContext) -> list[PythonService]:
    """`python_services` of the run's loaded units, once per run (QT201-QT204 and QT107)."""
    return ctx.memo(  # type: ignore[no-any-return]
        "python_services", lambda: python_services(ctx.config.fleet.units, loaded_units(ctx))
    )


def run_analysis(ctx: CheckContext, service: PythonService) -> Analysis:
    """`imports.analyse(service, fleet.code_roots)` once per run and service, shared by the
    checks that read it (QT201-QT204, QT107); the run's first analysis forgets older directory
    listings."""
    ctx.memo("imports:listings-cleared", clear_caches)
    roots = list(ctx.config.fleet.code_roots)
    return ctx.memo(f"imports:{service.unit}", lambda: analyse(service, roots))  # type: ignore[no-any-return]


def _load(ctx: CheckContext) -> list[FleetUnit]:
    systemd = ctx.systemd()
    patterns = list(ctx.config.fleet.units)

    def loader(service: bool) -> Callable[[bytes], Mapping[str, Any]]:
        return lambda path: systemd.unit_properties(path, service)

    units = [
        FleetUnit(
            row.name,
            row.object_path,
            row.load_state,
            row.active_state,
            row.sub_state,
            loader(row.name.endswith(".service") and row.load_state == "loaded"),
        )
        for row in systemd.list_units(patterns)
    ]
    return sorted(units, key=lambda u: u.name)


def journal_events(ctx: CheckContext) -> JournalBatch:
    """Restart events and OOM kills of the flap window (memoized per run)."""
    since = int((ctx.clock() - ctx.config.systemd.flap_window_sec) * 1e6)
    return ctx.memo("journal_events", lambda: _degrade(lambda: read_events(since)))  # type: ignore[no-any-return]


def recent_oom_kills(ctx: CheckContext) -> Counter[str]:
    """Kernel OOM kills per unit within the flap window; empty without a readable journal."""

    def read() -> Counter[str]:
        now = int(ctx.clock() * 1e6)
        since = now - int(ctx.config.systemd.flap_window_sec * 1e6)
        try:
            return read_oom_kills(since, now + 1_000_000)
        except AdapterUnavailable as exc:
            log.warning("journal unavailable, OOM kills unknown: %s", exc.reason)
            return Counter()

    return ctx.memo("oom_kills", read)  # type: ignore[no-any-return]


def journal_batch(ctx: CheckContext, units: Sequence[FleetUnit]) -> JournalBatch:
    """Events plus the logs of `units` since their last start (memoized per run)."""

    def read() -> JournalBatch:
        window_start = int((ctx.clock() - ctx.config.systemd.flap_window_sec) * 1e6)
        starts = {}
        for unit in units:
            started = int(unit.props.get("ExecMainStartTimestamp") or 0)
            # a looping unit's earlier runs matter too: read its whole flap window
            starts[unit.name] = min(window_start, started - 1_000_000) if started else window_start
            if unit.active_state == "failed" and started:
                starts[unit.name] = started - 1_000_000
        events = journal_events(ctx)
        current = {u.name: u.invocation for u in units}
        return _degrade(
            lambda: read_units(events, starts, oom_windows=_oom_windows(units), current=current),
            events,
        )

    return ctx.memo("journal_batch", read)  # type: ignore[no-any-return]


def _oom_windows(units: Sequence[FleetUnit]) -> dict[str, tuple[int, int]]:
    """Around each SIGKILL death: where a cgroup v1 kernel OOM line would be."""
    windows = {}
    for unit in units:
        killed = unit.props.get("ExecMainCode") == 2 and unit.props.get("ExecMainStatus") == 9
        died = int(unit.props.get("ExecMainExitTimestamp") or 0)
        if killed and died:
            windows[unit.name] = (died - 120_000_000, died + 5_000_000)
    return windows


def _degrade(
    read: Callable[[], JournalBatch], fallback: JournalBatch | None = None
) -> JournalBatch:
    """Without a readable journal the unit checks still run, on properties alone."""
    try:
        return read()
    except AdapterUnavailable as exc:
        log.warning("journal unavailable, causes come from unit properties only: %s", exc.reason)
        batch = fallback or JournalBatch()
        batch.problem = exc.reason
        return batch


def exec_probe(unit: FleetUnit) -> ExecProbe | None:
    """Inspect the program systemd executes, and the script a shell or python runs."""
    if not unit.exec_path:
        return None
    argv = unit.exec_argv
    program = unit.exec_path
    script = program
    if os.path.basename(program) in SHELLS or os.path.basename(program).startswith("python"):
        script = next((a for a in argv[1:] if a.startswith("/") and not a.startswith("-")), "")
    head = _head(program)
    body = _head(script, 65536) if script else b""
    return ExecProbe(
        path=script if script and script != program else program,
        exists=os.path.exists(program),
        executable=os.access(program, os.X_OK),
        shebang_cr=head.startswith(b"#!") and head.split(b"\n", 1)[0].endswith(b"\r"),
        bom=head.startswith(b"\xef\xbb\xbf"),
        body_crlf=b"\r\n" in body,
        missing_interpreter=_missing_interpreter(head),
    )


def _missing_interpreter(head: bytes) -> str:
    """The shebang's interpreter when it does not exist here (CRLF shebangs are another cause)."""
    first = head.removeprefix(b"\xef\xbb\xbf").split(b"\n", 1)[0]
    if not first.startswith(b"#!") or first.endswith(b"\r"):
        return ""
    words = first[2:].decode("utf-8", "replace").split()
    if not words:
        return ""
    env = os.path.basename(words[0]) == "env" and len(words) > 1
    name = words[1] if env else words[0]
    found = shutil.which(name) if env else os.path.exists(name)
    return "" if found else name


def _head(path: str, size: int = 4096) -> bytes:
    return safe_walk.read_head(path, size)  # never blocks on a FIFO planted as the script


def limit_set(value: Any) -> bool:
    """Whether a resource-control property holds a limit (not infinity)."""
    return value not in (None, "", INFINITY) and int(value) < INFINITY
