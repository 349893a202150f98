"""Findings: what a check reports, as plain frozen values."""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import IntEnum

from qtctl.engine.facts import Facts, facts_dict


class Severity(IntEnum):
    """How bad a finding is; ordered so `>=` compares badness."""

    INFO = 1
    WARNING = 2
    ERROR = 3

    @classmethod
    def parse(cls, text: str) -> Severity:
        """Severity from its lower-case name."""
        return cls[text.upper()]

    def __str__(self) -> str:
        return self.name.lower()


@dataclass(frozen=True)
class Ref:
    """A thing a finding is about, named for the incident rules (machine data, never shown
    as prose): `kind` is one of REF_KINDS, `name` a unit, path, stream key or Redis address."""

    kind: str
    name: str

    def as_dict(self) -> dict[str, str]:
        """The JSON shape: `{"kind": ..., "name": ...}`."""
        return {"kind": self.kind, "name": self.name}


REF_KINDS = {
    "unit": "the unit the finding is about",
    "needed-by": "a unit that Requires=/Wants=/After= the finding's unit",
    "needs": "a unit the finding's unit Requires=/BindsTo=/Requisite=",
    "runs": "a file the finding's unit executes (ExecStart= program or script)",
    "file": "a file the finding is about",
    "stream": "a Redis stream the finding is about",
    "group": "a consumer group, as `STREAM group NAME`",
    "written-by": "the unit that writes the finding's stream (streams.per_stream producer)",
    "redis": "a Redis address (host:port or socket path) the finding is about or the unit uses",
    "service": "the service name a key or unit carries (quantum:heartbeat:NAME, quantum-NAME)",
}


@dataclass(frozen=True)
class Finding:
    """One problem (or fact) a check found about one subject."""

    code: str
    severity: Severity
    subject: str
    message: str
    cause: str = ""
    detail: tuple[str, ...] = ()
    fix_hint: str = ""
    facts: Facts | None = None  # what fix reads; message and detail are for people
    related: tuple[str, ...] = field(default=())
    refs: tuple[Ref, ...] = ()  # what the incident rules read; machine data like facts

    @property
    def fixable(self) -> bool:
        """Whether `qtctl fix` plans a repair for it: it carries the facts a repair needs."""
        return self.facts is not None

    def cleaned(self, clean: Callable[[str], str]) -> Finding:
        """The finding with `clean` (redaction and escaping) applied to every text it shows;
        code and facts (machine data, what fix reads) stay as they are."""
        return dataclasses.replace(
            self,
            subject=clean(self.subject),
            message=clean(self.message),
            cause=clean(self.cause),
            detail=tuple(clean(line) for line in self.detail),
            fix_hint=clean(self.fix_hint),
            related=tuple(clean(item) for item in self.related),
        )

    def as_dict(self) -> dict[str, object]:
        """The stable JSON shape of a finding (schema qtctl.report/2: `facts` may be null;
        `refs` added in /2)."""
        return {
            "code": self.code,
            "severity": str(self.severity),
            "subject": self.subject,
            "message": self.message,
            "cause": self.cause,
            "detail": list(self.detail),
            "fix_hint": self.fix_hint,
            "fixable": self.fixable,
            "facts": facts_dict(self.facts),
            "related": list(self.related),
            "refs": [ref.as_dict() for ref in self.refs],
            "id": self.ident,
        }

    @property
    def ident(self) -> str:
        """A stable id: `CODE-` plus 8 hex digits of a hash of code and subject, so the same
        problem keeps its id across runs (a report numbers repeats: `engine.incidents`)."""
        digest = hashlib.sha256(f"{self.code}\0{self.subject}".encode()).hexdigest()[:8]
        return f"{self.code}-{digest}"


@dataclass(frozen=True)
class CodeDoc:
    """The documentation of one check code, as `qtctl explain CODE` prints it."""

    code: str
    title: str
    severity: str
    meaning: str
    why: str
    fix: str
    repair: type[Facts] | None = None  # the facts its fixable findings carry; None: never fixed
