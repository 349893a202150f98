"""The incident rules, one row each: the evidence that ties two findings links them, the same
findings without it do not; chains, roots and the JSON shape of an incident."""

from __future__ import annotations

import dataclasses

import pytest

from qtctl.engine.facts import ConsumerFacts, FileFacts, MigrationFacts, NotFoundFacts, UnitFacts
from qtctl.engine.findings import Finding, Ref, Severity
from qtctl.engine.incident_rules import RANK, RULES
from qtctl.engine.incidents import find_links, finding_ids, incidents
from qtctl.engine.report import Report

E, W, INFO = Severity.ERROR, Severity.WARNING, Severity.INFO
RP = "quantum-risk-proposal.service"
EXIT = "/home/qt/quantum_trader/scripts/exit_watch.sh"
S = "quantum:stream:"


def f(code: str, subject: str, cause: str = "", sev: Severity = E, **kw: object) -> Finding:
    return Finding(code, sev, subject, f"{code} about {subject}", cause, **kw)  # type: ignore[arg-type]


def down(unit: str, cause: str, *refs: Ref, code: str = "QT101") -> Finding:
    return f(code, unit, cause, facts=UnitFacts(unit) if code == "QT101" else None, refs=refs)


# rule name, root, consequence, the consequence without the tying evidence
ROWS = [
    (
        "import-breaks-unit",
        f("QT201", RP, "import-error", facts=UnitFacts(RP)),
        down(RP, "import-error"),
        down("quantum-other.service", "import-error"),
    ),
    (
        "crlf-breaks-script",
        f("QT301", "quantum-exit-watch.service", "crlf", facts=FileFacts((EXIT,))),
        down("quantum-exit.service", "bad-interpreter", Ref("runs", EXIT)),
        down("quantum-exit.service", "bad-interpreter", Ref("runs", "/bin/other.sh")),
    ),
    (
        "not-executable",
        f("QT303", "quantum-x.service", "not-executable", facts=FileFacts((EXIT,))),
        down("quantum-x.service", "exec-not-found", Ref("runs", EXIT)),
        down("quantum-x.service", "exec-not-found"),
    ),
    (
        "unit-file-breaks-unit",
        f("QT104", "quantum-u.service", "bad-user,no-restart"),
        down("quantum-u.service", "bad-user"),
        down("quantum-u.service", "oom-kill"),
    ),
    (
        "missing-workdir",
        f("QT104", "quantum-w.service", "working-directory,no-restart"),
        down("quantum-w.service", "workdir-missing"),
        down("quantum-w.service", "exec-not-found"),
    ),
    (
        "start-limit-ignored",
        f("QT104", "quantum-s.service", "wrong-section,no-limits"),
        down("quantum-s.service", "start-limit-hit"),
        down("quantum-t.service", "start-limit-hit"),
    ),
    (
        "env-file-breaks-unit",
        f("QT703", "quantum-e.service", "unreadable"),
        down("quantum-e.service", "resources"),
        down("quantum-e.service", "python-exception"),
    ),
    (
        "memory-limit-kills",
        f("QT706", "quantum-m.service", "oom-kill", W),
        down("quantum-m.service", "oom-kill"),
        down("quantum-n.service", "oom-kill"),
    ),
    (
        "missing-dependency",
        f(
            "QT102",
            "quantum-redis.service",
            "not-found",
            W,
            refs=(Ref("needed-by", "quantum-pm.service"),),
        ),
        f("QT104", "quantum-pm.service", "requires-missing,no-restart"),
        f("QT104", "quantum-other.service", "requires-missing"),
    ),
    (
        "missing-dependency-down",
        f(
            "QT102",
            "quantum-gone.service",
            "not-found",
            W,
            facts=NotFoundFacts("quantum-gone.service", ("quantum-a.service",), (), False),
        ),
        f("QT108", "quantum-a.service", "dependency-missing"),
        f("QT108", "quantum-b.service", "dependency-missing"),
    ),
    (
        "failed-dependency",
        down("quantum-db.service", "oom-kill"),
        f(
            "QT108",
            "quantum-app.service",
            "dependency-down",
            refs=(Ref("needs", "quantum-db.service"),),
        ),
        f(
            "QT108",
            "quantum-app.service",
            "dependency-down",
            refs=(Ref("needs", "quantum-x.service"),),
        ),
    ),
    (
        "shadowed-import",
        f("QT201", RP, "import-error"),
        f("QT203", RP, "shadowed", W),
        f("QT203", "quantum-b.service", "shadowed", W),
    ),
    (
        "dead-consumer-pending",
        f(
            "QT404",
            f"{S}trade.intent group g consumer c",
            "dead-consumer",
            W,
            facts=ConsumerFacts(f"{S}trade.intent", "g", "c", 5, ()),
        ),
        f(
            "QT403",
            f"{S}trade.intent group g",
            "pending",
            W,
            refs=(Ref("group", f"{S}trade.intent group g"),),
        ),
        f(
            "QT403",
            f"{S}trade.intent group h",
            "pending",
            W,
            refs=(Ref("group", f"{S}trade.intent group h"),),
        ),
    ),
    (
        "redis-down",
        f("QT400", "redis", "unreachable", refs=(Ref("redis", "127.0.0.1:6379"),)),
        down("quantum-c.service", "dependency-down", Ref("redis", "127.0.0.1:6379"), code="QT103"),
        down("quantum-c.service", "redis-unreachable", Ref("redis", "10.0.0.9:6379")),
    ),
    (
        "producer-down",
        down("quantum-sig.service", "python-exception", code="QT103"),
        f(
            "QT402",
            f"{S}ai.signal_generated",
            "producer-down",
            W,
            refs=(Ref("written-by", "quantum-sig.service"),),
        ),
        f(
            "QT402",
            f"{S}ai.signal_generated",
            "producer-down",
            W,
            refs=(Ref("written-by", "quantum-else.service"),),
        ),
    ),
    (
        "no-heartbeat",
        down(RP, "import-error"),
        f("QT704", "quantum:heartbeat:risk-proposal", "missing"),
        f("QT704", "quantum:heartbeat:exit-watch", "missing"),
    ),
    (
        "publisher-down",
        down(RP, "import-error"),
        f("QT501", "quantum:risk:proposal:*", "missing-proposal", refs=(Ref("written-by", RP),)),
        f(
            "QT501",
            "quantum:risk:proposal:*",
            "missing-proposal",
            refs=(Ref("written-by", "qtctl-risk-kernel.service"),),
        ),
    ),
    (
        "near-miss-readers",
        f(
            "QT405",
            f"{S}trade.execution.result",
            "near-miss",
            facts=MigrationFacts(f"{S}trade.execution.result", (f"{S}trade.execution.res",), ()),
        ),
        f(
            "QT404",
            f"{S}trade.execution.result group exit consumer m",
            "idle-consumer",
            INFO,
            facts=ConsumerFacts(f"{S}trade.execution.result", "exit", "m", 0, ()),
        ),
        f(
            "QT404",
            f"{S}trade.intent group exit consumer m",
            "idle-consumer",
            INFO,
            facts=ConsumerFacts(f"{S}trade.intent", "exit", "m", 0, ()),
        ),
    ),
]


def test_every_rule_has_a_row() -> None:
    assert sorted(r[0] for r in ROWS) == sorted(rule.name for rule in RULES)


@pytest.mark.parametrize(("name", "root", "effect", "unrelated"), ROWS, ids=[r[0] for r in ROWS])
def test_the_rule_links_on_its_evidence_only(
    name: str, root: Finding, effect: Finding, unrelated: Finding
) -> None:
    links = find_links([root, effect])
    assert [(link.cause, link.effect, link.rule.name) for link in links] == [(0, 1, name)]
    assert find_links([root, unrelated]) == []
    [incident] = incidents([effect, root])  # order given does not matter
    assert incident.root == root and incident.consequences == (effect,)


@pytest.mark.parametrize(("name", "root", "effect", "unrelated"), ROWS, ids=[r[0] for r in ROWS])
def test_rules_never_read_the_words(
    name: str, root: Finding, effect: Finding, unrelated: Finding
) -> None:
    reworded = [
        dataclasses.replace(x, message="reworded", detail=("other words",), fix_hint="")
        for x in (root, effect)
    ]
    assert [link.rule.name for link in find_links(reworded)] == [name]


def test_rules_point_down_the_ranks_so_no_chain_is_a_cycle() -> None:
    for rule in RULES:
        for a in rule.root.codes:
            assert all(RANK[a] < RANK[b] for b in rule.consequence.codes), rule.name


def test_a_chain_has_one_root_and_every_consequence_once() -> None:
    redis = f("QT400", "redis", "unreachable", refs=(Ref("redis", "127.0.0.1:6379"),))
    fleet = Ref("redis", "127.0.0.1:6379")
    loops = [
        down(f"quantum-w{i}.service", "dependency-down", fleet, code="QT103") for i in range(14)
    ]
    stale = f(
        "QT402", f"{S}trade.intent", "stale", W, refs=(Ref("written-by", "quantum-w3.service"),)
    )
    lone = f("QT104", "quantum-z.service", "no-restart", W)
    found = incidents([lone, stale, *loops, redis])
    [incident] = found
    assert incident.root is redis
    assert set(incident.consequences) == {*loops, stale}
    assert len(incident.members) == len(set(incident.members)) == 16


def test_import_chain_down_to_the_proposals_and_the_heartbeat() -> None:
    proposals = "quantum:risk:proposal:*"
    chain = [
        f("QT201", RP, "import-error", facts=UnitFacts(RP)),
        down(RP, "import-error"),
        f("QT704", "quantum:heartbeat:risk-proposal", "missing"),
        f("QT501", proposals, "missing-proposal", refs=(Ref("written-by", RP),)),
        f("QT203", RP, "shadowed", W),
    ]
    [incident] = incidents(chain)
    assert incident.root is chain[0]
    assert [x.code for x in incident.consequences] == ["QT101", "QT203", "QT501", "QT704"]
    rules = {(link.cause, link.effect): link.rule.name for link in incident.links}
    assert rules[(1, 3)] == "publisher-down" and rules[(1, 2)] == "no-heartbeat"


def test_a_stale_proposal_is_under_its_publisher_an_invalid_one_is_not() -> None:
    publisher = Ref("written-by", RP)
    stale = f("QT501", "quantum:risk:proposal:BTCUSDT", "stale", refs=(publisher,))
    wrong = f("QT501", "quantum:risk:proposal:ETHUSDT", "invalid-proposal", refs=(publisher,))
    [incident] = incidents([down(RP, "python-exception", code="QT103"), stale, wrong])
    assert incident.consequences == (stale,)


def test_ids_are_stable_and_unique_in_a_report() -> None:
    a, b = f("QT101", RP, "x"), f("QT101", RP, "y")
    assert finding_ids([a]) == finding_ids([dataclasses.replace(a, message="new words")])
    ids = finding_ids([a, b])
    assert ids[0] != ids[1] and ids[1] == f"{ids[0]}-2"


def test_incident_json_golden() -> None:
    root = f("QT301", "quantum-exit-watch.service", "crlf", facts=FileFacts((EXIT,)))
    root = dataclasses.replace(root, fix_hint="convert to LF, keeping mode and owner")
    unit = down("quantum-exit-watch.service", "bad-interpreter", Ref("runs", EXIT))
    doc = Report((unit, root)).as_dict()
    assert doc["schema"] == "qtctl.report/2"
    assert list(doc)[-1] == "incidents"
    assert [x["id"] for x in doc["findings"]] == ["QT101-260b1ca7", "QT301-52cf34d5"]  # type: ignore[index]
    assert doc["incidents"] == [
        {
            "id": "INC-QT301-52cf34d5",
            "root": "QT301-52cf34d5",
            "chain": ["QT301-52cf34d5", "QT101-260b1ca7"],
            "fix": "convert to LF, keeping mode and owner",
            "fixable": True,
            "links": [
                {"from": "QT301-52cf34d5", "to": "QT101-260b1ca7", "rule": "crlf-breaks-script"}
            ],
        }
    ]
    assert doc["findings"][0]["refs"] == [{"kind": "runs", "name": EXIT}]  # type: ignore[index]


def test_the_docs_carry_the_rules_table_generated_from_the_rules() -> None:
    from qtctl.engine.incident_rules import rules_markdown
    from tests.conftest import REPO

    assert rules_markdown() in (REPO / "docs/incidents.md").read_text()
