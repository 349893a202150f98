"""A failing unit's own evidence: the lines of the run that failed, and its earlier failed runs.

The journal's tail of a unit mixes runs: a loop's tracebacks, a restart that worked, a run that
failed on something else. The cause comes from one run: the newest that ended in failure (by its
invocation ID, from systemd's structured failure line), plus the unit's current invocation when
that is another (a start refused by the start limit). The newest few failed runs, each classified
on its own, summarise a flapping unit: "failed 37 times since 14:02, always import-error".
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from qtctl.adapters import safe_walk
from qtctl.adapters.journal import Entry, JournalBatch, Run
from qtctl.diagnosis.cause import Cause
from qtctl.diagnosis.failure_cause import classify
from qtctl.diagnosis.fleet import FleetUnit, exec_probe

EXIT_CODES = {"exited": 1, "killed": 2, "dumped": 3}
STDOUT_STATUS = 209
LATE_USEC = 50_000  # a dead process's last output reaches journald just after systemd's line
RECENT_USEC = 15_000_000  # a failure this recent may still lack its process's own lines
MAX_UNIT_BYTES = 1 << 20


def evidence_lines(unit: FleetUnit, batch: JournalBatch) -> list[str]:
    """The journal lines the cause of the unit's last failure is read from."""
    history = batch.runs.get(unit.name)
    current = [e.message for e in batch.current.get(unit.name, ())]
    if history and history.runs and history.runs[0].lines:
        newest = history.runs[0]
        before = history.runs[1].usec if len(history.runs) > 1 else 0
        entries = _merged(list(newest.lines), _unattributed(batch, unit, before, newest.usec))
        if unit.active_state == "failed":
            # a short-lived process's output can reach journald without an invocation ID: the
            # unit's lines since its last start belong to the same (last) run
            entries = _merged(entries, _since_start_entries(unit, batch))
        lines = [e.message for e in entries]
        if unit.invocation and unit.invocation != newest.invocation and _is_down(unit):
            lines += current  # e.g. "Start request repeated too quickly" of a refused start
        return lines
    return [e.message for e in _since_start_entries(unit, batch)]


def _merged(first: list[Entry], second: list[Entry]) -> list[Entry]:
    seen = {(e.usec, e.message) for e in first}
    return sorted(
        [*first, *(e for e in second if (e.usec, e.message) not in seen)], key=lambda e: e.usec
    )


def unit_cause(unit: FleetUnit, batch: JournalBatch, roots: Sequence[str]) -> Cause:
    """The cause of the unit's last failure, from that run's own evidence."""
    cause, evidence = _newest_cause(unit, batch, roots)
    if evidence or cause.kind != "exit-code" or not _just_failed(unit, batch):
        return cause  # a start limit's "exit-code" under it stays: the limit is the news
    # the newest run's own lines are not in the journal yet (a process that died at once):
    # the newest earlier run whose evidence names a cause tells, not a run classified from
    # nothing (an earlier bare exit status says no more than this one's)
    earlier = (c for c, has in _earlier_causes(unit, batch, roots) if has and c.kind != cause.kind)
    return next(earlier, cause)


def _newest_cause(unit: FleetUnit, batch: JournalBatch, roots: Sequence[str]) -> tuple[Cause, bool]:
    """The last failure's cause from its own lines, and whether it had evidence (a cause, or
    lines of its own: not `exit-code` from systemd's lines alone)."""
    oom = batch.oom_units.get(unit.name, 0) > 0
    props = Overlay(_output_files(unit), unit.props)  # deferred properties stay unread
    lines = evidence_lines(unit, batch)
    cause = classify(props, lines, exec_probe(unit), oom, roots)
    return cause, _has_evidence(unit, cause, lines)


def _output_files(unit: FleetUnit) -> dict[str, str]:
    """For 209/STDOUT: the append:/file:/truncate: paths, which systemd 252 does not show over
    D-Bus (StandardOutputFileDescriptorName stays empty), read from the unit files."""
    if unit.props.get("ExecMainStatus") != STDOUT_STATUS:
        return {}
    return output_paths(unit)


def output_paths(unit: FleetUnit) -> dict[str, str]:
    """`StandardOutputFileDescriptorName`/`StandardErrorFileDescriptorName` -> the path of a
    `StandardOutput=append:PATH` (file:, truncate:) in the unit's files, the last one winning as
    in systemd; systemd 252 shows only `append` over D-Bus, never the path."""
    found: dict[str, str] = {}
    paths = [unit.props.get("FragmentPath"), *(unit.props.get("DropInPaths") or [])]
    for path in filter(None, map(str, paths)):
        text = safe_walk.read_head(path, MAX_UNIT_BYTES).decode("utf-8", "replace")
        for line in text.splitlines():
            key, _, value = line.strip().partition("=")
            _kind, colon, target = value.strip().partition(":")
            if key.strip() in ("StandardOutput", "StandardError") and colon:
                found[f"{key.strip()}FileDescriptorName"] = target
    return found


def run_causes(
    unit: FleetUnit, batch: JournalBatch, roots: Sequence[str]
) -> list[tuple[Cause, bool]]:
    """The causes of the newest failed runs whose lines were read, newest first, each from its
    own lines, with whether the run had its evidence."""
    history = batch.runs.get(unit.name)
    if not history or not history.runs or not history.runs[0].lines:
        return []
    return [_newest_cause(unit, batch, roots), *_earlier_causes(unit, batch, roots)]


def _earlier_causes(
    unit: FleetUnit, batch: JournalBatch, roots: Sequence[str]
) -> list[tuple[Cause, bool]]:
    """The causes of the read runs before the newest, newest first, with their evidence flag."""
    runs = list(history.runs) if (history := batch.runs.get(unit.name)) else []
    probe = exec_probe(unit)
    causes = []
    for index, run in enumerate(runs[1:], start=1):
        if not run.lines:
            continue  # beyond the runs read
        older = runs[index + 1].usec if index + 1 < len(runs) else 0
        entries = _merged(list(run.lines), _unattributed(batch, unit, older, run.usec))
        lines = [e.message for e in entries]
        cause = classify(_props_of(unit, run), lines, probe, False, roots)
        causes.append((cause, _has_evidence(unit, cause, lines)))
    return causes


def _has_evidence(unit: FleetUnit, cause: Cause, lines: Sequence[str]) -> bool:
    """A run has its evidence when a cause explains it, or it has lines of its own: not
    `exit-code` (also under a start limit) from systemd's lines alone."""
    return (cause.underlying or cause.kind) != "exit-code" or _own_output(unit, lines)


def _own_output(unit: FleetUnit, lines: Sequence[str]) -> bool:
    """Whether the run's lines hold anything but systemd's own about the unit (which start
    with `UNIT: ` or are its job lines `Started`/`Stopped`/`Failed to start`/`Consumed`)."""
    own = ("Started ", "Starting ", "Stopped ", "Stopping ", "Failed to start ")
    return any(
        not line.startswith((f"{unit.name}: ", *own)) and " CPU time" not in line for line in lines
    )


def _just_failed(unit: FleetUnit, batch: JournalBatch) -> bool:
    """The newest failure is recent enough that its process's lines may still be on their way
    to the journal (journald reads a service's output stream after systemd's own lines)."""
    history = batch.runs.get(unit.name)
    newest = history.runs[0].usec if history and history.runs else 0
    return time.time() * 1e6 - newest < RECENT_USEC


def _unattributed(batch: JournalBatch, unit: FleetUnit, before: int, failed: int) -> list[Entry]:
    """The unit's lines without an invocation ID that belong to the run that failed at `failed`
    (the run before it failed at `before`, 0 for none). journald attaches no ID to a line it
    reads after the unit stopped (checked in the sandbox: a process that dies at once, or one
    left running after its unit failed); until the next run starts, RestartSec= later, such a
    line is still the failed run's."""
    late = max(LATE_USEC, int(unit.props.get("RestartUSec") or 0))
    after = before + late if before else 0
    return [
        e
        for e in batch.by_unit.get(unit.name, ())
        if not e.invocation and after < e.usec <= failed + late
    ]


def summary(unit: FleetUnit, batch: JournalBatch, roots: Sequence[str]) -> str:
    """'failed 37 times since 14:02 UTC, always import-error' or '... 2 different causes in
    the last 5: import-error (3), python-exception (2)'; '' for fewer than two failures."""
    history = batch.runs.get(unit.name)
    if not history or len(history.runs) < 2:
        return ""
    since = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(history.runs[-1].usec / 1e6))
    causes = run_causes(unit, batch, roots)
    counted = [c for c, evidence in causes if evidence] or [c for c, _ in causes]
    kinds = Counter(c.underlying or c.kind for c in counted)
    head = f"failed {len(history.runs):,} times since {since}"
    head += " (and more before: only the newest are read)" if history.capped else ""
    bare = len(causes) - len(counted)
    tail = f" ({bare} more without lines of their own in the journal)" if bare else ""
    if len(kinds) == 1:
        return f"{head}, the last {sum(kinds.values())} always {next(iter(kinds))}{tail}"
    listed = ", ".join(f"{kind} ({n})" for kind, n in kinds.most_common())
    return (
        f"{head}; {len(kinds)} different causes in the last {sum(kinds.values())}: {listed}" + tail
    )


class Overlay(Mapping[str, Any]):
    """`top` over `base`, reading `base` only key by key (its deferred properties stay unread)."""

    def __init__(self, top: Mapping[str, Any], base: Mapping[str, Any]) -> None:
        self.top, self.base = top, base

    def __getitem__(self, key: str) -> Any:
        return self.top[key] if key in self.top else self.base[key]

    def __iter__(self) -> Iterator[str]:
        return iter({**dict.fromkeys(self.base.keys()), **dict.fromkeys(self.top)})

    def __len__(self) -> int:
        return len(set(self.base.keys()) | set(self.top))


def _props_of(unit: FleetUnit, run: Run) -> dict[str, object]:
    """The unit's properties with the result and main-process exit of an earlier run."""
    props = dict(unit.props)
    props.update(
        Result=run.result,
        ExecMainCode=EXIT_CODES.get(run.exit_code, 0),
        ExecMainStatus=run.exit_status,
        ExecMainExitTimestamp=run.usec,  # a file changed since is judged against this run
        ExecStartPre=[],  # the control processes' statuses are the last run's
        ExecStartPost=[],
    )
    return props


def _is_down(unit: FleetUnit) -> bool:
    return unit.active_state == "failed" or unit.sub_state == "auto-restart"


def _since_start_entries(unit: FleetUnit, batch: JournalBatch) -> list[Entry]:
    """Without systemd's structured lines: the unit's lines since its last start."""
    entries = list(batch.by_unit.get(unit.name, ()))
    if not _is_down(unit):
        return entries  # running between crashes: the earlier runs tell
    # A start refused by the start limit gets a new invocation ID without an exec, so the
    # timestamp of the last exec is the better boundary.
    started = int(unit.props.get("ExecMainStartTimestamp") or 0)
    if not started:
        return [e for e in entries if e.invocation in (unit.invocation, "")]
    return [e for e in entries if e.usec >= started - 1_000_000]
