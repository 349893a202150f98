"""Read the journal in one batch: the units of interest, restart events and kernel OOM lines."""

from __future__ import annotations

import json
import re
import subprocess
from collections import Counter, defaultdict, deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from qtctl.errors import AdapterUnavailable

RESTART_SCHEDULED = "5eb03494b6584870a536b337290809b3"
FIELDS = (
    "MESSAGE,_SYSTEMD_UNIT,UNIT,_SYSTEMD_INVOCATION_ID,INVOCATION_ID,MESSAGE_ID,_TRANSPORT,"
    "PRIORITY,_COMM"
)
OOM_MEMCG = re.compile(r"oom_memcg=\S*/([^/,\s]+)")
OOM_KILLED = re.compile(r"Killed process (\d+)")
MAX_LINE = 2000


@dataclass(frozen=True)
class Entry:
    """One journal entry, decoded; the message keeps \\r so CRLF evidence survives."""

    usec: int
    message: str
    unit: str
    invocation: str
    transport: str
    message_id: str


@dataclass
class JournalBatch:
    """What one journalctl call returned, grouped for the checks."""

    by_unit: dict[str, deque[Entry]] = field(default_factory=dict)
    restarts: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    oom_units: Counter[str] = field(default_factory=Counter)
    lines_read: int = 0


def read_batch(
    units: Iterable[str], since_usec: int, per_unit: int = 400, journalctl: str = "journalctl"
) -> JournalBatch:
    """One journalctl call: entries of `units`, restart events and kernel lines since a time."""
    wanted = sorted(set(units))
    matches: list[str] = []
    for unit in wanted:
        matches += [f"_SYSTEMD_UNIT={unit}", "+", f"UNIT={unit}", "+"]
    matches += [f"MESSAGE_ID={RESTART_SCHEDULED}", "+", "_TRANSPORT=kernel"]
    argv = [journalctl, "--no-pager", "-o", "json", f"--output-fields={FIELDS}"]
    argv += ["--since", f"@{max(since_usec, 0) / 1e6:.6f}", *matches]
    batch = JournalBatch(by_unit={u: deque(maxlen=per_unit) for u in wanted})
    for entry in _stream(argv):
        batch.lines_read += 1
        _file(batch, entry)
    return batch


def _file(batch: JournalBatch, entry: Entry) -> None:
    if entry.message_id == RESTART_SCHEDULED and entry.unit:
        batch.restarts[entry.unit].append(entry.usec)
    if entry.transport == "kernel":
        match = OOM_MEMCG.search(entry.message)
        if match:
            batch.oom_units[match.group(1)] += 1
        return
    if entry.unit in batch.by_unit:
        batch.by_unit[entry.unit].append(entry)


def _stream(argv: list[str]) -> Iterator[Entry]:
    try:
        proc = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL
        )
    except FileNotFoundError:
        raise AdapterUnavailable("journal", f"{argv[0]} is not installed") from None
    assert proc.stdout is not None
    with proc:
        for raw in proc.stdout:
            entry = _parse(raw)
            if entry is not None:
                yield entry
        err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    if proc.returncode not in (0, 1) or "Permission denied" in err:
        raise AdapterUnavailable("journal", f"journalctl failed: {err.strip()[:300]}")


def _parse(raw: bytes) -> Entry | None:
    try:
        doc = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(doc, dict):
        return None
    return Entry(
        usec=_int(doc.get("__REALTIME_TIMESTAMP")),
        message=_text(doc.get("MESSAGE"))[:MAX_LINE],
        # systemd's own lines about a unit carry UNIT=; the service's output _SYSTEMD_UNIT=.
        unit=_text(doc.get("UNIT")) or _text(doc.get("_SYSTEMD_UNIT")),
        invocation=_text(doc.get("INVOCATION_ID")) or _text(doc.get("_SYSTEMD_INVOCATION_ID")),
        transport=_text(doc.get("_TRANSPORT")),
        message_id=_text(doc.get("MESSAGE_ID")),
    )


def _text(value: object) -> str:
    """journalctl prints non-UTF-8 fields as byte arrays and repeated fields as lists."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        if all(isinstance(v, int) for v in value):
            return bytes(v & 0xFF for v in value).decode("utf-8", "replace")
        return _text(value[-1]) if value else ""
    return str(value)


def _int(value: object) -> int:
    try:
        return int(str(value))
    except ValueError:
        return 0


def printable(message: str) -> str:
    """A journal line fit for a terminal: CR shown as ^M, other control bytes as '?'."""
    shown = message.replace("\r", "^M")
    return "".join(ch if ch >= " " or ch == "\t" else "?" for ch in shown)
