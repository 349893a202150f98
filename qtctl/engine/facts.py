"""Repair facts: the machine data a check attaches to a fixable finding, the only thing fix reads.

A finding's `message` and `detail` are for people and may be reworded at will; a planner reads
the finding's `facts` (and its `subject`/`cause` codes) and nothing else. Each fixable code
declares its facts type on its `CodeDoc`, and the planner registry is checked against it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass


@dataclass(frozen=True)
class UnitFacts:
    """A repair of one systemd unit (QT101, QT104 no-restart, QT201, QT701)."""

    unit: str


@dataclass(frozen=True)
class DanglingLink:
    """A `*.wants/` or `*.requires/` symlink whose target does not exist."""

    path: str
    target: str


@dataclass(frozen=True)
class NotFoundFacts:
    """QT102: a unit without a unit file, who still refers to it, and its dangling links."""

    unit: str
    referrers: tuple[str, ...]
    links: tuple[DanglingLink, ...]
    failed: bool


@dataclass(frozen=True)
class FileFacts:
    """Files to repair (QT301: the executed script; QT302: CRLF source files)."""

    paths: tuple[str, ...]


@dataclass(frozen=True)
class EnvFileFacts:
    """QT703: an EnvironmentFile= and every problem kind found in it."""

    path: str
    causes: tuple[str, ...]


@dataclass(frozen=True)
class StreamFacts:
    """A repair of one stream's entries (QT401 trim, QT504 quarantine)."""

    stream: str


@dataclass(frozen=True)
class QuarantineFacts:
    """QT504: the garbage records of a stream, (entry id, validator's reason), newest first."""

    stream: str
    garbage: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class GroupFacts:
    """QT403 group-missing: the stream and the consumer group to create."""

    stream: str
    group: str


@dataclass(frozen=True)
class ConsumerFacts:
    """QT404: a consumer that is idle (`pending == 0`) or dead holding pending entries."""

    stream: str
    group: str
    consumer: str
    pending: int
    live: tuple[str, ...]


@dataclass(frozen=True)
class MigrationFacts:
    """QT405 near-miss: the expected stream, the names to move from, and evidence against."""

    target: str
    sources: tuple[str, ...]
    against: tuple[str, ...]


@dataclass(frozen=True)
class DependencyFacts(UnitFacts):
    """QT101/QT108 dependency-missing: the unit whose `Requires=` names a unit that does not
    exist, the missing name, the one existing unit that provides it, and the unit file to edit
    (a UnitFacts: what repairs a unit still finds the unit)."""

    missing: str
    provider: str
    fragment: str


Facts = (
    UnitFacts
    | NotFoundFacts
    | FileFacts
    | EnvFileFacts
    | StreamFacts
    | QuarantineFacts
    | GroupFacts
    | ConsumerFacts
    | MigrationFacts
    | DependencyFacts
)


def facts_dict(facts: Facts | None) -> dict[str, object] | None:
    """The JSON shape: the fields plus `kind`, the facts type's name."""
    if facts is None:
        return None
    return {"kind": type(facts).__name__, **dataclasses.asdict(facts)}
