"""Turn findings into repairs: one planner per fixable code, fed only the finding's facts.

A planner reads `finding.facts` (the typed data its check attached), the finding's `subject`
and `cause` codes, and the live host; never `message` or `detail`, which are for people.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from qtctl.diagnosis.fleet import fleet_units
from qtctl.engine.context import CheckContext
from qtctl.engine.facts import (
    ConsumerFacts,
    DependencyFacts,
    EnvFileFacts,
    FileFacts,
    GroupFacts,
    MigrationFacts,
    NotFoundFacts,
    QuarantineFacts,
    StreamFacts,
    UnitFacts,
)
from qtctl.engine.findings import Finding
from qtctl.errors import AdapterUnavailable
from qtctl.fix.chain import redis_first, within_budget
from qtctl.fix.dependency_plans import plan_dependency, plan_unit_down
from qtctl.fix.file_plans import plan_crlf_executed, plan_crlf_sources, plan_env_file
from qtctl.fix.journal import FixJournal
from qtctl.fix.policy import FixOptions, live_mode
from qtctl.fix.python_plans import plan_pythonpath
from qtctl.fix.repair import Planning, Repair
from qtctl.fix.stream_plans import (
    plan_group,
    plan_hand_over,
    plan_migrate,
    plan_quarantine,
    plan_trim,
)
from qtctl.fix.unit_plans import plan_drop_in, plan_health_restart, plan_not_found

F = TypeVar("F")
REDIS_DOWN = "QT400"


@dataclass(frozen=True)
class Planner(Generic[F]):
    """The repair of one code, and the facts type its findings must carry."""

    facts: type[F]
    plan: Callable[[Finding, F, Planning], Repair]


PLANNERS: dict[str, Planner[Any]] = {
    "QT101": Planner(UnitFacts, plan_unit_down),  # dependency-missing: plan_dependency
    "QT102": Planner(NotFoundFacts, plan_not_found),
    "QT104": Planner(UnitFacts, plan_drop_in),
    "QT201": Planner(UnitFacts, plan_pythonpath),
    "QT301": Planner(FileFacts, plan_crlf_executed),
    "QT302": Planner(FileFacts, plan_crlf_sources),
    "QT401": Planner(StreamFacts, plan_trim),
    "QT403": Planner(GroupFacts, plan_group),
    "QT404": Planner(ConsumerFacts, plan_hand_over),
    "QT405": Planner(MigrationFacts, plan_migrate),
    "QT504": Planner(QuarantineFacts, plan_quarantine),
    "QT701": Planner(UnitFacts, plan_health_restart),
    "QT703": Planner(EnvFileFacts, plan_env_file),
    "QT108": Planner(DependencyFacts, plan_dependency),
}


def plan(
    findings: Sequence[Finding],
    ctx: CheckContext,
    options: FixOptions,
    done: int = 0,
) -> list[Repair]:
    """A repair for every fixable finding, in report order; with Redis down its unit's restart
    comes first and what needs Redis waits; restarts beyond the budget or the rate limit are
    held. `done`: the restarts this run already did."""
    fixable = [f for f in findings if f.fixable and f.code in PLANNERS]
    redis_down = next((f for f in findings if f.code == REDIS_DOWN), None)
    if not fixable and redis_down is None:
        return []
    try:
        units = {u.name: u for u in fleet_units(ctx)}
    except AdapterUnavailable:
        units = {}  # file repairs still plan; unit repairs say the unit is not reachable
    live = live_mode(ctx.config, units.values())
    restarts = FixJournal(ctx.config.fix.state_dir).last_restarts()
    planning = Planning(ctx, options, units, live, restarts, tuple(findings))
    repairs = [plan_one(f, planning) for f in fixable]
    if redis_down is not None:
        repairs = redis_first(redis_down, repairs, planning)
    return within_budget(repairs, planning, done)


def plan_one(finding: Finding, planning: Planning) -> Repair:
    """The repair of one finding, held when it does not carry the facts its planner needs."""
    planner = PLANNERS[finding.code]
    if not isinstance(finding.facts, planner.facts):
        got = type(finding.facts).__name__
        return Repair(
            finding,
            held=f"internal: {finding.code} carries {got}, not the "
            f"{planner.facts.__name__} its repair needs; nothing planned",
        )
    return planner.plan(finding, finding.facts, planning)
