"""The incident linking rules, as data: which finding causes which, and the evidence that ties
the two (a pair of ref kinds whose names must be equal).

A rule `Rule(name, root, consequence, tie)` links finding A to finding B when A's code is in
`root.codes` (and its cause is in `root.causes`, if given), B likewise for `consequence`, and
some ref of A of kind `tie.root` names the same thing as some ref of B of kind
`tie.consequence`. Rules only ever point from a lower `RANK` to a higher one, so the links
cannot form a cycle (checked by `tests/test_incidents.py`).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Side:
    """Which findings may stand at one end of a link: codes, and causes (empty: any)."""

    codes: tuple[str, ...]
    causes: tuple[str, ...] = ()

    def takes(self, code: str, cause: str) -> bool:
        """Whether a finding with this code and cause (a comma list of cause codes) fits."""
        if code not in self.codes:
            return False
        return not self.causes or any(c in self.causes for c in cause.split(","))


@dataclass(frozen=True)
class Tie:
    """The evidence: a ref of kind `root` on the cause and of kind `consequence` on the effect
    that name the same thing."""

    root: str
    consequence: str
    says: str = ""


@dataclass(frozen=True)
class Rule:
    """One causal link between two kinds of finding."""

    name: str
    root: Side
    consequence: Side
    tie: Tie
    says: str
    fix: str = ""  # what to do about the root when its own fix hint is about something else


SAME_UNIT = Tie("unit", "unit", says="same unit")
REQUIRED = Tie("needed-by", "unit", says="the consequence's unit Requires=/After= the root's")
NEEDED = Tie("unit", "needs", says="the consequence's unit Requires= the root's")
SAME_GROUP = Tie("group", "group", says="same consumer group")
RUNS_FILE = Tie("file", "runs", says="the consequence's unit runs the root's file")
WRITES = Tie("unit", "written-by", says="the root's unit writes the consequence's stream")
SAME_STREAM = Tie("stream", "stream", says="same stream")
SAME_REDIS = Tie("redis", "redis", says="the unit uses that Redis")
SERVICE = Tie("service", "service", says="the key is named after the unit's service")
PUBLISHES = Tie("unit", "written-by", says="the root's unit is a publisher of the proposals")
DOWN = ("QT101", "QT103")

# fmt: off
RULES: tuple[Rule, ...] = (
    Rule("import-breaks-unit", Side(("QT201", "QT204")), Side(DOWN, ("import-error",)),
         SAME_UNIT, "the import fails, so the service exits at start"),
    Rule("crlf-breaks-script", Side(("QT301",)), Side(DOWN, ("bad-interpreter", "exit-code")),
         RUNS_FILE, "the script's CRLF line endings stop it from running"),
    Rule("not-executable", Side(("QT303",)), Side(DOWN), RUNS_FILE,
         "the script is not executable, so the unit cannot start"),
    Rule("unit-file-breaks-unit", Side(("QT104",), ("bad-user", "verify", "load-error")),
         Side(DOWN, ("bad-user", "exec-not-found", "resources")), SAME_UNIT,
         "the unit file's mistake stops it from starting",
         "correct the unit file's first problem (`systemctl edit UNIT`), then restart the unit"),
    Rule("missing-workdir", Side(("QT104",), ("working-directory",)),
         Side((*DOWN, "QT201"), ("workdir-missing", "import-error")), SAME_UNIT,
         "its WorkingDirectory= does not exist: systemd cannot start it (200/CHDIR)",
         "create the WorkingDirectory= or point it at the folder the code is in"),
    Rule("start-limit-ignored", Side(("QT104",), ("wrong-section",)),
         Side(DOWN, ("start-limit-hit",)), SAME_UNIT,
         "StartLimit*= in [Service] is ignored, so the default start limit stops the restarts",
         "move StartLimitIntervalSec=/StartLimitBurst= to [Unit], then fix what made it fail"),
    Rule("env-file-breaks-unit", Side(("QT703",)), Side(DOWN, ("resources",)), SAME_UNIT,
         "systemd refuses its EnvironmentFile="),
    Rule("memory-limit-kills", Side(("QT706",), ("oom-kill",)), Side(DOWN, ("oom-kill",)),
         SAME_UNIT, "the memory limit kills it"),
    Rule("missing-dependency", Side(("QT102",)), Side(("QT104",), ("requires-missing",)),
         REQUIRED, "it Requires= a unit that does not exist",
         "install the missing unit, or point Requires= at the unit that exists"),
    Rule("missing-dependency-down", Side(("QT102",)),
         Side((*DOWN, "QT108"), ("dependency", "dependency-missing")), REQUIRED,
         "a unit it Requires= does not exist"),
    Rule("failed-dependency", Side(DOWN), Side(("QT108",), ("dependency-down",)), NEEDED,
         "a unit it Requires= has failed"),
    Rule("shadowed-import", Side(("QT201",)), Side(("QT203",)), SAME_UNIT,
         "the shadowing package is how the import fails"),
    Rule("dead-consumer-pending", Side(("QT404",), ("dead-consumer",)),
         Side(("QT403",), ("pending",)), SAME_GROUP,
         "a dead consumer holds the group's pending entries"),
    Rule("redis-down", Side(("QT400",)),
         Side(DOWN, ("redis-unreachable", "dependency-down")), SAME_REDIS,
         "the service cannot reach Redis"),
    Rule("producer-down", Side(DOWN), Side(("QT402",)), WRITES,
         "its producer is down, so the stream goes stale"),
    Rule("publisher-down", Side(DOWN), Side(("QT501",), ("missing-proposal", "stale")),
         PUBLISHES, "the proposals' publisher is down, so open positions get no stop-loss"),
    Rule("no-heartbeat", Side(DOWN), Side(("QT704",), ("missing", "stale")), SERVICE,
         "the service is down, so its heartbeat stops"),
    Rule("near-miss-readers", Side(("QT405",), ("near-miss",)),
         Side(("QT402", "QT403", "QT404")), SAME_STREAM,
         "entries go to a near-miss name, so readers of the other name see nothing"),
)

# Where a code stands in a chain: a rule points from a lower rank to a higher one.
RANK = {
    "QT400": 0, "QT102": 0, "QT301": 0, "QT303": 0, "QT405": 0, "QT703": 0, "QT706": 0,
    "QT104": 1,
    "QT201": 2, "QT204": 2,
    "QT101": 3, "QT103": 3, "QT203": 3,
    "QT108": 4, "QT402": 4, "QT404": 4, "QT501": 4, "QT704": 4,
    "QT403": 5,
}
# fmt: on


def rules_markdown() -> str:
    """The rules as a Markdown table (docs/incidents.md carries it verbatim; a test checks)."""
    rows = ["| rule | root | leads to | tied by | why |", "|---|---|---|---|---|"]
    for rule in RULES:
        rows.append(
            f"| `{rule.name}` | {_side(rule.root)} | {_side(rule.consequence)} | "
            f"{rule.tie.says} (`{rule.tie.root}` = `{rule.tie.consequence}`) | {rule.says} |"
        )
    return "\n".join(rows) + "\n"


def _side(side: Side) -> str:
    causes = f" ({', '.join(side.causes)})" if side.causes else ""
    return ", ".join(side.codes) + causes
