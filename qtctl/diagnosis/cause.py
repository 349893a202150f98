"""The evidence and the verdict types of the failure classifier (shared by its modules)."""

from __future__ import annotations

from dataclasses import dataclass

# A restart alone may cure these; anything else needs the cause fixed first.
TRANSIENT = frozenset(
    {
        "redis-unreachable",
        "timeout",
        "oom-kill",
        "signal",
        "dependency-down",
        "start-limit-hit",
        "changed-since-failure",  # the failed run's evidence predates the file as it is now
    }
)


@dataclass(frozen=True)
class ExecProbe:
    """What the file system says about the unit's ExecStart program."""

    path: str
    exists: bool
    executable: bool
    shebang_cr: bool = False
    bom: bool = False
    body_crlf: bool = False
    missing_interpreter: str = ""


@dataclass(frozen=True)
class Cause:
    """A failure class from the user contract and the evidence in words.

    `missing` names the path or thing a setup step lacked; `likely` where it probably lives
    (a ghost path's real copy); `underlying` is, for start-limit-hit, what the unit kept failing
    on, and decides whether the cause is transient.
    """

    kind: str
    summary: str
    missing: str = ""
    likely: str = ""
    underlying: str = ""

    @property
    def transient(self) -> bool:
        """Whether a restart alone may cure it (a start limit only when what tripped it may)."""
        if self.kind == "start-limit-hit":
            return self.underlying in TRANSIENT and self.underlying != "start-limit-hit"
        return self.kind in TRANSIENT
