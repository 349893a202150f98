"""Read the journal in-process through libsystemd's sd-journal API (ctypes, no extra package).

One open journal per run; per unit of interest it seeks to the tail and steps back at most N
entries, so a unit that logged gigabytes costs no more than a quiet one. Restart events and
kernel OOM kills come from one forward scan of the flap window. A failing unit's runs come from
systemd's own structured lines (the failure result and the main process's exit, by MESSAGE_ID),
newest first and capped at MAX_RUNS_SCANNED, and the lines of its newest failed runs by their
invocation ID (capped at RUNS_READ runs): a unit with 6,568 failures costs the same as one with
500.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from collections import Counter, defaultdict, deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from qtctl.errors import AdapterUnavailable

RESTART_SCHEDULED = "5eb03494b6584870a536b337290809b3"
FAILURE_RESULT = "d9b373ed55a64feb8242e02dbe79a49c"  # "Failed with result 'X'." UNIT_RESULT=
PROCESS_EXIT = "98e322203f7a4ed290d09fe03c09fe15"  # "Main process exited": EXIT_CODE/STATUS
MAX_RUNS_SCANNED = 500
RUNS_READ = 5
OLDER_RUN_LINES = 40
LOCAL_ONLY = 1
MAX_FIELD = 4096  # bytes kept of any field: binary junk or megabyte lines stay bounded
MAX_EVENT_SCAN = 200_000


@dataclass(frozen=True)
class Entry:
    """One journal entry, decoded; the message keeps \\r so CRLF evidence survives."""

    usec: int
    message: str
    unit: str
    invocation: str
    message_id: str


@dataclass(frozen=True)
class Run:
    """One invocation of a unit that ended in failure, from systemd's structured lines."""

    invocation: str
    usec: int  # when systemd logged the failure
    result: str  # UNIT_RESULT: exit-code, signal, core-dump, timeout, ...
    exit_code: str = ""  # EXIT_CODE of the main process: exited, killed, dumped ("" unknown)
    exit_status: int = 0
    lines: tuple[Entry, ...] = ()  # read only for the newest RUNS_READ runs


@dataclass(frozen=True)
class RunHistory:
    """A unit's failed runs, newest first; `capped` when more failures exist than were read."""

    runs: tuple[Run, ...] = ()
    capped: bool = False


@dataclass
class JournalBatch:
    """What the checks need from the journal, grouped."""

    by_unit: dict[str, deque[Entry]] = field(default_factory=dict)
    restarts: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    oom_units: Counter[str] = field(default_factory=Counter)
    runs: dict[str, RunHistory] = field(default_factory=dict)
    current: dict[str, tuple[Entry, ...]] = field(default_factory=dict)  # the unit's InvocationID
    entries_read: int = 0
    problem: str = ""  # why the journal could not be read, if it could not


class Journal:
    """An open sd_journal handle (local journal files, all boots)."""

    def __init__(self) -> None:
        self._lib = _load_library()
        self._handle = ctypes.c_void_p()
        rc = self._lib.sd_journal_open(ctypes.byref(self._handle), LOCAL_ONLY)
        if rc < 0:
            raise AdapterUnavailable("journal", f"sd_journal_open failed: {_strerror(rc)}")
        self._lib.sd_journal_set_data_threshold(self._handle, MAX_FIELD)

    def close(self) -> None:
        """Close the journal."""
        if self._handle:
            self._lib.sd_journal_close(self._handle)
            self._handle = ctypes.c_void_p()

    def tail(self, unit: str, since_usec: int, limit: int) -> list[Entry]:
        """The newest `limit` entries about `unit` not older than `since_usec`, oldest first."""
        self._match([f"_SYSTEMD_UNIT={unit}", f"UNIT={unit}"])
        self._check(self._lib.sd_journal_seek_tail(self._handle), "seek_tail")
        found: list[Entry] = []
        while len(found) < limit and self._lib.sd_journal_previous(self._handle) > 0:
            entry = self._entry(unit)
            if entry.usec < since_usec:
                break
            if entry.message_id != RESTART_SCHEDULED:
                found.append(entry)
        found.reverse()
        return found

    def failed_runs(
        self, unit: str, limit: int = MAX_RUNS_SCANNED, tail: Sequence[Entry] = ()
    ) -> RunHistory:
        """The unit's newest `limit` failed invocations, newest first, with the main process's
        exit (when systemd logged it); the lines of the newest RUNS_READ of them (the newest
        run's from `tail`, the unit's newest lines, when they hold it)."""
        self._match_all(
            [f"UNIT={unit}"], [f"MESSAGE_ID={FAILURE_RESULT}", f"MESSAGE_ID={PROCESS_EXIT}"]
        )
        self._check(self._lib.sd_journal_seek_tail(self._handle), "seek_tail")
        runs: dict[str, Run] = {}
        exits: dict[str, tuple[str, int]] = {}
        capped = False
        while self._lib.sd_journal_previous(self._handle) > 0:
            invocation = self._field("INVOCATION_ID")
            if self._field("MESSAGE_ID") == FAILURE_RESULT:
                if invocation in runs:
                    continue  # a start-limit refusal logs a second failure for the same run
                if len(runs) >= limit:
                    capped = True
                    break
                runs[invocation] = Run(invocation, self._usec(), self._field("UNIT_RESULT"))
            elif self._field("COMMAND") in ("ExecStart", "") and invocation not in exits:
                status = self._field("EXIT_STATUS")
                exits[invocation] = (
                    self._field("EXIT_CODE"),
                    int(status) if status.isdigit() else 0,
                )
        ordered = sorted(runs.values(), key=lambda r: -r.usec)
        return RunHistory(
            tuple(self._with_exit(r, exits, i, tail) for i, r in enumerate(ordered)), capped
        )

    def _with_exit(
        self, run: Run, exits: dict[str, tuple[str, int]], index: int, tail: Sequence[Entry]
    ) -> Run:
        code, status = exits.get(run.invocation, ("", 0))
        lines: tuple[Entry, ...] = ()
        if index == 0:  # the evidence: its lines are usually the tail already read
            lines = tuple(e for e in tail if e.invocation == run.invocation)
            lines = lines or tuple(self.invocation_lines(run.invocation))
        elif index < RUNS_READ:  # the older runs only need their last lines
            lines = tuple(self.invocation_lines(run.invocation, OLDER_RUN_LINES))
        return Run(run.invocation, run.usec, run.result, code, status, lines)

    def invocation_lines(self, invocation: str, limit: int = 200) -> list[Entry]:
        """The newest `limit` entries of one invocation (systemd's and the service's), oldest
        first."""
        if not invocation:
            return []
        self._match([f"_SYSTEMD_INVOCATION_ID={invocation}", f"INVOCATION_ID={invocation}"])
        self._check(self._lib.sd_journal_seek_tail(self._handle), "seek_tail")
        found: list[Entry] = []
        while len(found) < limit and self._lib.sd_journal_previous(self._handle) > 0:
            entry = self._entry()
            if entry.message_id != RESTART_SCHEDULED:
                found.append(entry)
        found.reverse()
        return found

    def _usec(self) -> int:
        usec = ctypes.c_uint64()
        self._lib.sd_journal_get_realtime_usec(self._handle, ctypes.byref(usec))
        return usec.value

    def events(self, since_usec: int, batch: JournalBatch) -> None:
        """Restart-scheduled events of every unit since a time."""
        self._match([f"MESSAGE_ID={RESTART_SCHEDULED}"])
        self._check(self._lib.sd_journal_seek_realtime_usec(self._handle, since_usec), "seek")
        for _ in range(MAX_EVENT_SCAN):
            if self._lib.sd_journal_next(self._handle) <= 0:
                break
            batch.entries_read += 1
            entry = self._entry()
            if entry.unit:
                batch.restarts[entry.unit].append(entry.usec)

    def oom_kills(self, since_usec: int, until_usec: int) -> Counter[str]:
        """Units named by kernel OOM-kill lines in a time window (cgroup v1 evidence)."""
        found: Counter[str] = Counter()
        self._match(["_TRANSPORT=kernel"])
        self._check(self._lib.sd_journal_seek_realtime_usec(self._handle, since_usec), "seek")
        for _ in range(MAX_EVENT_SCAN):
            if self._lib.sd_journal_next(self._handle) <= 0:
                break
            usec = ctypes.c_uint64()
            self._lib.sd_journal_get_realtime_usec(self._handle, ctypes.byref(usec))
            if usec.value > until_usec:
                break
            unit = _oom_unit(self._field("MESSAGE"))
            if unit:
                found[unit] += 1
        return found

    def _match(self, alternatives: Iterable[str]) -> None:
        self._lib.sd_journal_flush_matches(self._handle)
        for i, match in enumerate(alternatives):
            if i:
                self._check(self._lib.sd_journal_add_disjunction(self._handle), "disjunction")
            data = match.encode("utf-8", "surrogateescape")
            self._check(self._lib.sd_journal_add_match(self._handle, data, len(data)), "match")

    def _match_all(self, required: Iterable[str], any_of: Iterable[str]) -> None:
        """Entries with every `required` field value and one of `any_of` (another field)."""
        self._lib.sd_journal_flush_matches(self._handle)
        for match in (*required, *any_of):  # sd-journal ANDs fields, ORs values of one field
            data = match.encode("utf-8", "surrogateescape")
            self._check(self._lib.sd_journal_add_match(self._handle, data, len(data)), "match")

    def _entry(self, unit: str = "") -> Entry:
        usec = ctypes.c_uint64()
        self._lib.sd_journal_get_realtime_usec(self._handle, ctypes.byref(usec))
        return Entry(
            usec=usec.value,
            message=self._field("MESSAGE"),
            # systemd's own lines about a unit carry UNIT=; the service's output _SYSTEMD_UNIT=.
            unit=unit or self._field("UNIT") or self._field("_SYSTEMD_UNIT"),
            invocation=self._field("INVOCATION_ID") or self._field("_SYSTEMD_INVOCATION_ID"),
            message_id=self._field("MESSAGE_ID"),
        )

    def _field(self, name: str) -> str:
        data = ctypes.c_void_p()
        length = ctypes.c_size_t()
        rc = self._lib.sd_journal_get_data(
            self._handle, name.encode(), ctypes.byref(data), ctypes.byref(length)
        )
        if rc < 0 or not data.value:
            return ""
        raw = ctypes.string_at(data.value, length.value)
        return raw[len(name) + 1 :].decode("utf-8", "replace")

    def _check(self, rc: int, what: str) -> None:
        if rc < 0:
            raise AdapterUnavailable("journal", f"sd_journal {what} failed: {_strerror(rc)}")


def read_events(since_usec: int) -> JournalBatch:
    """Restart events and OOM kills since a time (one forward scan)."""
    batch = JournalBatch()
    journal = Journal()
    try:
        journal.events(since_usec, batch)
    finally:
        journal.close()
    return batch


def read_oom_kills(since_usec: int, until_usec: int) -> Counter[str]:
    """Units named by kernel OOM-kill lines in a time window."""
    journal = Journal()
    try:
        return journal.oom_kills(since_usec, until_usec)
    finally:
        journal.close()


def read_units(
    batch: JournalBatch,
    starts: Mapping[str, int],
    per_unit: int = 200,
    oom_windows: Mapping[str, tuple[int, int]] | None = None,
    current: Mapping[str, str] | None = None,
) -> JournalBatch:
    """The newest `per_unit` lines of each unit since its own start, its failed runs and the
    lines of its current invocation (`current`: unit -> InvocationID), into `batch`; kernel OOM
    lines are looked up only around the deaths of units killed by SIGKILL (`oom_windows`)."""
    if not starts and not oom_windows:
        return batch
    journal = Journal()
    try:
        for unit, since in starts.items():
            entries = journal.tail(unit, since, per_unit)
            batch.entries_read += len(entries)
            batch.by_unit[unit] = deque(entries, maxlen=per_unit)
            history = journal.failed_runs(unit, tail=entries)
            batch.runs[unit] = history
            invocation = (current or {}).get(unit, "")
            if history.runs and history.runs[0].invocation == invocation:
                batch.current[unit] = history.runs[0].lines  # the same run: read once
            else:
                batch.current[unit] = tuple(journal.invocation_lines(invocation, per_unit))
        for unit, (since, until) in (oom_windows or {}).items():
            if journal.oom_kills(since, until).get(unit):
                batch.oom_units[unit] += 1
    finally:
        journal.close()
    return batch


def printable(message: str) -> str:
    """A journal line fit for a terminal: CR shown as ^M, other control bytes as '?'."""
    shown = message.replace("\r", "^M")
    return "".join(ch if ch >= " " or ch == "\t" else "?" for ch in shown)


def _oom_unit(message: str) -> str:
    """The unit named by a cgroup v1 kernel OOM line (`oom_memcg=/system.slice/UNIT`)."""
    marker = "oom_memcg="
    if marker not in message:
        return ""
    path = message.split(marker, 1)[1].split(",", 1)[0]
    return path.rstrip("/").rsplit("/", 1)[-1]


_LIBRARY: Any = None


def _load_library() -> Any:
    global _LIBRARY
    if _LIBRARY is None:
        name = ctypes.util.find_library("systemd") or "libsystemd.so.0"
        try:
            lib = ctypes.CDLL(name, use_errno=True)
        except OSError as exc:
            raise AdapterUnavailable("journal", f"libsystemd cannot be loaded: {exc}") from None
        _declare(lib)
        _LIBRARY = lib
    return _LIBRARY


def _declare(lib: Any) -> None:
    handle, pp = ctypes.c_void_p, ctypes.POINTER(ctypes.c_void_p)
    signatures: dict[str, tuple[Any, list[Any]]] = {
        "sd_journal_open": (ctypes.c_int, [pp, ctypes.c_int]),
        "sd_journal_close": (None, [handle]),
        "sd_journal_set_data_threshold": (ctypes.c_int, [handle, ctypes.c_size_t]),
        "sd_journal_add_match": (ctypes.c_int, [handle, ctypes.c_char_p, ctypes.c_size_t]),
        "sd_journal_add_disjunction": (ctypes.c_int, [handle]),
        "sd_journal_flush_matches": (None, [handle]),
        "sd_journal_seek_tail": (ctypes.c_int, [handle]),
        "sd_journal_seek_realtime_usec": (ctypes.c_int, [handle, ctypes.c_uint64]),
        "sd_journal_previous": (ctypes.c_int, [handle]),
        "sd_journal_next": (ctypes.c_int, [handle]),
        "sd_journal_get_realtime_usec": (ctypes.c_int, [handle, ctypes.POINTER(ctypes.c_uint64)]),
        "sd_journal_get_data": (
            ctypes.c_int,
            [handle, ctypes.c_char_p, pp, ctypes.POINTER(ctypes.c_size_t)],
        ),
    }
    for name, (restype, argtypes) in signatures.items():
        function = getattr(lib, name)
        function.restype = restype
        function.argtypes = argtypes


def _strerror(rc: int) -> str:
    import os

    return os.strerror(-rc) if rc < 0 else str(rc)
