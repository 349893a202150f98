"""What fix will do about one finding (or why not), and the inputs shared by one planning pass."""

from __future__ import annotations

from dataclasses import dataclass

from qtctl.diagnosis.fleet import FleetUnit
from qtctl.engine.context import CheckContext
from qtctl.engine.findings import Finding
from qtctl.fix.actions import Action
from qtctl.fix.policy import FixOptions


@dataclass(frozen=True)
class Repair:
    """What fix will do about one finding, or why it will not."""

    finding: Finding
    actions: tuple[Action, ...] = ()
    held: str = ""
    manual: str = ""
    resolves: str = ""  # the one problem kind it removes from a multi-problem finding
    diff: str = ""
    rule: str = ""  # which rule held it, as data (protected, not-failing, budget, chain, ...)

    @property
    def runnable(self) -> bool:
        """Whether --apply will carry it out."""
        return bool(self.actions) and not self.held


@dataclass(frozen=True)
class Planning:
    """Shared inputs of one planning pass."""

    ctx: CheckContext
    options: FixOptions
    units: dict[str, FleetUnit]
    live: str
    restarts: dict[str, float]
    findings: tuple[Finding, ...] = ()  # every finding of this run: the evidence of a failure

    def failing_finding(self, unit: str) -> Finding | None:
        """The QT101/QT103 finding of `unit` in this run, if any."""
        return next(
            (f for f in self.findings if f.code in ("QT101", "QT103") and f.subject == unit), None
        )
