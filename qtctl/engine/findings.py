"""Findings: what a check reports, as plain frozen values."""

from __future__ import annotations

import dataclasses
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
        """The stable JSON shape of a finding (schema qtctl.report/1; `facts` added, may be
        null)."""
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
        }


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
