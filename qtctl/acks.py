"""Acknowledged findings: `qtctl ack` entries in the state folder and `--baseline` files.

An acknowledged finding is still listed (with its reason and expiry) but does not change the
exit code; once expired it counts again. The state file is root's own (`<state_dir>/acks.json`,
0600 in a 0700 folder, replaced atomically through `safe_files`); a baseline comes from a
repository, so it is untrusted: size-capped, never a FIFO, every field type-checked, and any
mistake is one clear line (exit 2)."""

from __future__ import annotations

import errno
import fnmatch
import json
import os
import re
import stat
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qtctl.ack_time import expiry, format_time, valid_epoch
from qtctl.errors import UsageError
from qtctl.formats.model import AckState, Entry, Results
from qtctl.redaction import DEFAULT as REDACT

__all__ = ["Ack", "AckStore", "add_ack", "describe", "format_time", "read_baseline"]

STATE_SCHEMA = "qtctl.acks/1"
BASELINE_SCHEMA = "qtctl.baseline/1"
MAX_FILE_BYTES = 8 * 2**20
MAX_ENTRIES = 100_000
MAX_TEXT = 4096


@dataclass(frozen=True)
class Ack:
    """One acknowledgement: a code and subject (glob) from `qtctl ack`, or a baseline entry
    that names one finding by its fingerprint."""

    code: str
    subject: str
    reason: str
    expires: float | None = None
    created: float = 0.0
    fingerprint: str = ""

    def matches(self, entry: Entry) -> bool:
        """Whether it covers this finding (a subject glob matches the subject or the file)."""
        if entry.finding.code != self.code:
            return False
        if self.fingerprint:
            return entry.fingerprint == self.fingerprint
        names = (entry.finding.subject, entry.location.path)
        return any(n and fnmatch.fnmatchcase(n, self.subject) for n in names)

    def as_dict(self) -> dict[str, object]:
        """The stored shape."""
        doc: dict[str, object] = {"code": self.code, "subject": self.subject}
        if self.fingerprint:
            doc["fingerprint"] = self.fingerprint
        doc |= {"reason": self.reason, "expires": self.expires, "created": self.created}
        return doc


def apply_acks(results: Results, acks: Sequence[tuple[Ack, str]], now: float) -> Results:
    """Mark every entry an ack covers; `acks` pairs each with its source. A live ack wins
    over an expired one."""
    marked = []
    for entry in results.entries:
        states = [
            AckState(a.reason, a.expires, a.expires is not None and a.expires <= now, source)
            for a, source in acks
            if a.matches(entry)
        ]
        states.sort(key=lambda s: s.expired)
        marked.append(
            Entry(entry.finding, entry.location, entry.fingerprint, states[0] if states else None)
        )
    return results.with_entries(marked)


class AckStore:
    """`<state_dir>/acks.json`: the acknowledgements `qtctl ack` keeps."""

    def __init__(self, state_dir: str) -> None:
        self.folder = Path(state_dir)
        self.path = self.folder / "acks.json"

    def load(self) -> list[Ack]:
        """Every stored ack; none when the file does not exist yet."""
        if not os.path.lexists(self.path):
            return []
        _check_private(self.folder)
        from qtctl.adapters import safe_files

        try:
            data, snapshot = safe_files.read_file(str(self.path), MAX_FILE_BYTES)
        except (OSError, safe_files.UnsafePath) as exc:
            raise UsageError(f"{self.path}: cannot read: {exc}") from None
        if snapshot.uid != os.geteuid() or snapshot.mode & 0o077:
            raise UsageError(
                f"{self.path} was not written by qtctl (owner uid {snapshot.uid}, "
                f"mode {snapshot.mode:04o}): refused"
            )
        return parse_document(data, str(self.path), STATE_SCHEMA)

    def save(self, acks: Iterable[Ack]) -> None:
        """Replace the file atomically (0600 temp file, renamed) in a 0700 folder."""
        from qtctl.adapters import safe_files
        from qtctl.adapters.safe_files import private_umask

        if os.path.lexists(self.folder):
            _check_private(self.folder)
        with private_umask():
            self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        _check_private(self.folder)
        doc = {"schema": STATE_SCHEMA, "acks": [a.as_dict() for a in acks]}
        safe_files.write_file(str(self.path), json.dumps(doc, indent=2).encode() + b"\n", 0o600)


def add_ack(
    store: AckStore,
    code: str,
    subject: str,
    reason: str | None,
    for_: str | None,
    until: str | None,
) -> Ack:
    """Store (or replace) the ack of CODE SUBJECT; a reason is required, one expiry at most."""
    from qtctl.catalog import all_codes

    code = code.upper()
    if code not in all_codes():
        raise UsageError(f"unknown check code {code!r}; `qtctl explain` lists them")
    if not reason or not reason.strip():
        raise UsageError("--reason is required: say why this finding is accepted")
    start = now()
    expires = expiry(start, for_, until)
    new = Ack(code, subject, reason.strip(), expires, start)
    kept = [a for a in store.load() if (a.code, a.subject) != (code, subject)]
    store.save([*kept, new])
    return new


def remove_ack(store: AckStore, code: str, subject: str) -> int:
    """Drop the acks of CODE SUBJECT; how many there were (none: a usage error)."""
    acks = store.load()
    kept = [a for a in acks if (a.code, a.subject) != (code, subject)]
    if len(kept) == len(acks):
        raise UsageError(f"no acknowledgement of {code} {subject} (see qtctl ack --list)")
    store.save(kept)
    return len(acks) - len(kept)


def describe(ack: Ack) -> str:
    """`QT104 quantum-x.service until 2026-12-03 10:00 UTC: reason` (or `expired ...`): one
    line, redacted and escaped."""
    if ack.expires is None:
        until = "no expiry"
    else:
        expired = "expired " if ack.expires <= now() else ""
        until = f"{expired}until {format_time(ack.expires)}"
    return REDACT.shown(f"{ack.code} {ack.subject} ({until}): {ack.reason}")


def read_baseline(path: str) -> list[Ack]:
    """The acks of a baseline file (untrusted: a repository's); exit 2 on any mistake. A
    symlink is not followed (its target may be a file only root can read)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOFOLLOW)
    except OSError as exc:
        why = "a symbolic link: not followed" if exc.errno == errno.ELOOP else exc.strerror
        raise UsageError(f"baseline {path}: cannot open: {why}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise UsageError(f"baseline {path}: not a plain file")
        if info.st_size > MAX_FILE_BYTES:
            raise UsageError(f"baseline {path}: larger than {MAX_FILE_BYTES // 2**20} MiB")
        data = os.read(fd, MAX_FILE_BYTES + 1)
    finally:
        os.close(fd)
    return parse_document(data, f"baseline {path}", BASELINE_SCHEMA)


def baseline_document(results: Results, reason: str, now: float) -> bytes:
    """A baseline acknowledging every finding of this run, by fingerprint."""
    acks = [
        Ack(e.finding.code, e.finding.subject, reason, None, now, e.fingerprint).as_dict()
        for e in results.entries
    ]
    doc = {"schema": BASELINE_SCHEMA, "tool": results.tool, "acks": acks}
    return json.dumps(doc, indent=2).encode() + b"\n"


def write_baseline(path: str, data: bytes) -> None:
    """Write a baseline file (a repository file, not root state): atomically, 0644; never
    over a device, FIFO or socket, nor through a folder link the fleet user planted (exit 2)."""
    from qtctl.adapters import safe_files
    from qtctl.report.sink import not_a_file

    kind = not_a_file(Path(path))
    if kind:  # a rename over /dev/null would make it a regular file
        raise UsageError(f"--write-baseline {path} is {kind}; name a regular file")
    try:
        safe_files.write_file(os.path.abspath(path), data, 0o644)
    except safe_files.UnsafePath as exc:
        raise UsageError(f"--write-baseline {path}: {exc}") from None


def parse_document(data: bytes, what: str, schema: str) -> list[Ack]:
    """Acks from a JSON document of `schema`; every value checked, errors name the entry."""
    if len(data) > MAX_FILE_BYTES:
        raise UsageError(f"{what}: larger than {MAX_FILE_BYTES // 2**20} MiB")
    try:
        doc = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise UsageError(f"{what}: not valid JSON ({str(exc).splitlines()[0][:120]})") from None
    except RecursionError:
        raise UsageError(f"{what}: not valid JSON (nested too deep)") from None
    if not isinstance(doc, dict) or doc.get("schema") != schema:
        raise UsageError(f'{what}: not a {schema} document (its "schema" must be {schema!r})')
    items = doc.get("acks")
    if not isinstance(items, list) or len(items) > MAX_ENTRIES:
        raise UsageError(f'{what}: "acks" must be a list of at most {MAX_ENTRIES} entries')
    baseline = schema == BASELINE_SCHEMA
    acks = [_ack(item, f"{what}: acks[{i}]", baseline) for i, item in enumerate(items)]
    if baseline and doc.get("tool", "lint") not in ("lint", "doctor"):
        raise UsageError(f'{what}: "tool" must be "lint" or "doctor"')
    return acks


def _ack(item: Any, where: str, baseline: bool) -> Ack:
    """One entry; a baseline's names one finding by a fingerprint (never empty: that would
    be a wildcard a reviewer cannot see)."""
    if not isinstance(item, dict):
        raise UsageError(f"{where}: must be an object")
    code, subject = _text(item, "code", where), _text(item, "subject", where)
    if not re.fullmatch(r"QT\d{3}", code):
        raise UsageError(f"{where}: code must look like QT104, got {code[:40]!r}")
    expires = item.get("expires")
    if expires is not None and not valid_epoch(expires):
        raise UsageError(f"{where}: expires must be epoch seconds or null")
    created = item.get("created", 0.0)
    if not valid_epoch(created):
        raise UsageError(f"{where}: created must be epoch seconds (up to 9999-12-31)")
    fingerprint = _text(item, "fingerprint", where, required=baseline)
    if fingerprint and not re.fullmatch(r"[0-9a-f]{8,64}", fingerprint):
        raise UsageError(f"{where}: fingerprint must be hex digits")
    reason = REDACT.text(_text(item, "reason", where, required=False))  # quoted in every format
    return Ack(
        code,
        subject,
        reason,
        None if expires is None else float(expires),
        float(created),
        fingerprint,
    )


def _text(item: dict[str, Any], key: str, where: str, required: bool = True) -> str:
    value = item.get(key, None if required else "")
    if not isinstance(value, str) or len(value) > MAX_TEXT or (required and not value):
        raise UsageError(
            f"{where}: {key} must be a non-empty string of at most {MAX_TEXT} chars"
            if required
            else f"{where}: {key} must be a string"
        )
    return value


def _check_private(folder: Path) -> None:
    """The state folder must be ours and writable by no one else (as the fix journal's)."""
    info = os.lstat(folder)
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid() or info.st_mode & 0o022:
        raise UsageError(
            f"{folder} must be a folder of uid {os.geteuid()} that no one else can write "
            f"(it is uid {info.st_uid}, mode {stat.S_IMODE(info.st_mode):04o}): acks refused"
        )


def now() -> float:
    """The clock acks are judged by."""
    return time.time()
