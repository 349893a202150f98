"""Make a report read as one story: findings of different checks about one subject refer to each
other (a failed unit, the unit-file mistake behind it, the import or CRLF finding of its code)."""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Sequence

from qtctl.engine.findings import Finding

UNLINKED_SUBJECTS = frozenset({"systemd", "redis", "code roots", "fleet inventory"})


def link_by_subject(findings: Sequence[Finding]) -> list[Finding]:
    """Each finding gains `related` entries ("CODE subject") for the others on its subject."""
    by_subject: dict[str, list[Finding]] = defaultdict(list)
    for finding in findings:
        by_subject[finding.subject].append(finding)
    linked = []
    for finding in findings:
        peers = [
            f"{other.code} {other.subject}"
            for other in by_subject[finding.subject]
            if other.code != finding.code and finding.subject not in UNLINKED_SUBJECTS
        ]
        related = tuple(dict.fromkeys([*finding.related, *peers]))
        linked.append(dataclasses.replace(finding, related=related) if peers else finding)
    return linked
