"""What every output format renders: findings with a location, a fingerprint and an ack state.

A finding's location is a file (path, line) when it is about one file, else a logical one (the
unit, stream or host it is about). The fingerprint is stable across runs: code, subject, file
and cause, plus an occurrence number for repeats; never the line (code moves) nor the message
(it may be reworded)."""

from __future__ import annotations

import dataclasses
import hashlib
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from qtctl.engine.facts import EnvFileFacts, FileFacts
from qtctl.engine.findings import Finding
from qtctl.engine.report import Report


@dataclass(frozen=True)
class Location:
    """Where a finding is: a file and line (0: the whole file), or `path` empty and the
    subject as a logical location."""

    path: str = ""
    line: int = 0


@dataclass(frozen=True)
class AckState:
    """An acknowledgement that covers a finding: why, until when (None: no end), expired."""

    reason: str
    expires: float | None
    expired: bool
    source: str  # "state" (qtctl ack) or the baseline file's path

    def label(self) -> str:
        """`acknowledged until 2026-12-03 10:00 UTC: reason` (or `ack expired ...`): the
        reason (a baseline's: untrusted) redacted and escaped to one line."""
        from qtctl.acks import format_time
        from qtctl.redaction import DEFAULT as REDACT

        until = f" until {format_time(self.expires)}" if self.expires is not None else ""
        head = "ack expired" if self.expired else "acknowledged"
        return f"{head}{until}: {REDACT.shown(self.reason)}"


@dataclass(frozen=True)
class Entry:
    """One finding as the formats show it."""

    finding: Finding
    location: Location
    fingerprint: str
    ack: AckState | None = None

    @property
    def counts(self) -> bool:
        """Whether it decides the exit code: not acknowledged, or its ack has expired."""
        return self.ack is None or self.ack.expired


@dataclass(frozen=True)
class Results:
    """A run as the formats see it: the report, its entries, and which command made it."""

    tool: str  # doctor | lint
    report: Report
    entries: tuple[Entry, ...]

    @property
    def counted(self) -> Report:
        """The report of the findings that decide the exit code."""
        kept = tuple(e.finding for e in self.entries if e.counts)
        return dataclasses.replace(self.report, findings=kept)

    def with_entries(self, entries: Iterable[Entry]) -> Results:
        """The same run with other entries (acks applied)."""
        return dataclasses.replace(self, entries=tuple(entries))


def locate(finding: Finding) -> Location:
    """A doctor finding's file, when its repair facts name one."""
    facts = finding.facts
    if isinstance(facts, FileFacts) and len(facts.paths) == 1:
        return Location(shown_path(facts.paths[0]))
    if isinstance(facts, EnvFileFacts):
        return Location(shown_path(facts.path))
    return Location()


def shown_path(path: str) -> str:
    """A path relative to the working directory when under it (what CI annotations need)."""
    if not os.path.isabs(path):
        return path
    here = os.getcwd()
    return os.path.relpath(path, here) if path.startswith(here + os.sep) else path


def build(tool: str, report: Report, locations: Sequence[Location] | None = None) -> Results:
    """Entries for a report; `locations` parallel to its findings (lint), else derived."""
    where = list(locations) if locations is not None else [locate(f) for f in report.findings]
    seen: dict[str, int] = {}
    entries = []
    for finding, location in zip(report.findings, where, strict=True):
        key = "\0".join((finding.code, finding.subject, location.path, finding.cause))
        seen[key] = seen.get(key, 0) + 1
        # a name that was not UTF-8 (read with surrogateescape) hashes as the bytes it was
        raw = f"{key}\0{seen[key]}".encode("utf-8", "surrogateescape")
        digest = hashlib.sha256(raw).hexdigest()[:20]
        entries.append(Entry(finding, location, digest))
    return Results(tool, report, tuple(entries))
