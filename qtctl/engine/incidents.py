"""Incidents: findings grouped into causal chains with one root, by the rules in
`incident_rules.RULES`, from typed evidence only (code, cause, subject, facts, refs; never the
message or detail, which are for people)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from qtctl.engine.facts import (
    ConsumerFacts,
    FileFacts,
    GroupFacts,
    MigrationFacts,
    NotFoundFacts,
    QuarantineFacts,
    StreamFacts,
    UnitFacts,
)
from qtctl.engine.findings import Finding, Ref
from qtctl.engine.incident_rules import RULES, Rule

UNIT_SUFFIXES = (".service", ".socket", ".timer", ".target", ".path", ".mount")
SERVICE_PREFIXES = ("quantum-", "qtctl-")
KEY_PREFIXES = ("quantum:heartbeat:",)


@dataclass(frozen=True)
class Link:
    """One applied rule: `cause` (an index into the findings) leads to `effect`."""

    cause: int
    effect: int
    rule: Rule


@dataclass(frozen=True)
class Incident:
    """One causal chain: the root finding, then every consequence reachable from it (breadth
    first), each reached by exactly one link."""

    root: Finding
    consequences: tuple[Finding, ...]
    links: tuple[Link, ...]
    members: tuple[int, ...]  # indices into the findings given: the root first

    @property
    def fix(self) -> str:
        """The one fix to apply: what the first link's rule says to do about its root, else
        the root's own fix hint."""
        first = self.links[0].rule.fix if self.links else ""
        return first or self.root.fix_hint


def incidents(findings: Sequence[Finding]) -> list[Incident]:
    """The causal chains among `findings`, worst root first.

    Contract: pure (no I/O, same input, same output). Every finding is in at most one
    incident; a root is a finding no rule links anything to, with at least one consequence;
    a consequence reachable from several roots goes to the worst root (then the one with the
    longest chain, then the first given).
    Findings in no incident are the caller's "other findings"."""
    links = find_links(findings)
    causes: dict[int, list[Link]] = defaultdict(list)
    has_cause = set()
    for link in links:
        causes[link.cause].append(link)
        has_cause.add(link.effect)
    roots = [i for i in causes if i not in has_cause]
    size = {i: len(_reach(i, causes, set())[0]) for i in roots}
    roots.sort(key=lambda i: (-findings[i].severity, -size[i], i))
    taken: set[int] = set()
    found = []
    for root in roots:
        members, used = _reach(root, causes, taken)
        if len(members) > 1:
            taken.update(members)
            found.append(_incident(findings, members, used))
    return found


def find_links(findings: Sequence[Finding]) -> list[Link]:
    """Every (cause, effect, rule) the rules find, in rule order then finding order."""
    evidence = [set(refs_of(f)) for f in findings]
    links = []
    for rule in RULES:
        index: dict[str, list[int]] = defaultdict(list)
        for j, f in enumerate(findings):
            if rule.consequence.takes(f.code, f.cause):
                for ref in evidence[j]:
                    if ref.kind == rule.tie.consequence:
                        index[ref.name].append(j)
        for i, f in enumerate(findings):
            if rule.root.takes(f.code, f.cause):
                hits = {j for r in evidence[i] if r.kind == rule.tie.root for j in index[r.name]}
                links += [Link(i, j, rule) for j in sorted(hits) if j != i]
    return links


def _reach(
    root: int, causes: dict[int, list[Link]], taken: set[int]
) -> tuple[list[int], list[Link]]:
    members, used, queue = [root], [], [root]
    while queue:
        for link in causes.get(queue.pop(0), []):
            if link.effect not in taken and link.effect not in members:
                members.append(link.effect)
                used.append(link)
                queue.append(link.effect)
    return members, used


def _incident(findings: Sequence[Finding], members: list[int], used: list[Link]) -> Incident:
    return Incident(
        root=findings[members[0]],
        consequences=tuple(findings[i] for i in members[1:]),
        links=tuple(used),
        members=tuple(members),
    )


def refs_of(f: Finding) -> Iterable[Ref]:
    """The finding's own refs plus those its subject and facts imply."""
    yield from f.refs
    if f.subject.endswith(UNIT_SUFFIXES):
        yield Ref("unit", f.subject)
        yield from _service(f.subject.rsplit(".", 1)[0], SERVICE_PREFIXES)
    elif f.subject.startswith(KEY_PREFIXES):
        yield from _service(f.subject, KEY_PREFIXES)
    yield from _facts_refs(f)


def _service(name: str, prefixes: tuple[str, ...]) -> Iterable[Ref]:
    for prefix in prefixes:
        if name.startswith(prefix) and len(name) > len(prefix):
            yield Ref("service", name[len(prefix) :])


def _facts_refs(f: Finding) -> Iterable[Ref]:
    facts = f.facts
    if isinstance(facts, UnitFacts | NotFoundFacts):
        yield Ref("unit", facts.unit)
    if isinstance(facts, NotFoundFacts):
        yield from (Ref("needed-by", name) for name in facts.referrers)
    if isinstance(facts, FileFacts):
        yield from (Ref("file", path) for path in facts.paths)
    if isinstance(facts, StreamFacts | QuarantineFacts | GroupFacts | ConsumerFacts):
        yield Ref("stream", facts.stream)
    if isinstance(facts, ConsumerFacts | GroupFacts):
        yield Ref("group", f"{facts.stream} group {facts.group}")
    if isinstance(facts, MigrationFacts):
        yield from (Ref("stream", name) for name in (facts.target, *facts.sources))


def finding_ids(findings: Sequence[Finding]) -> list[str]:
    """Each finding's `ident`, unique within the report: a repeat of a code and subject gets
    `-2`, `-3`... in report order."""
    seen: dict[str, int] = defaultdict(int)
    ids = []
    for f in findings:
        seen[f.ident] += 1
        ids.append(f.ident if seen[f.ident] == 1 else f"{f.ident}-{seen[f.ident]}")
    return ids
