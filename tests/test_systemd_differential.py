"""qtctl reads unit files and env files as the real systemd does, on systemd's own test corpora.

The corpus is the test/ folder (and the env-file vectors of src/test/test-env-file.c) of the
Debian source package of the installed systemd, fetched by scripts/setup.sh. Each batch boots one
sandbox: systemd reads the files (D-Bus, its journal, `systemd-analyze verify`), so does qtctl
(its parsers, and `qtctl doctor --select QT104` as an operator runs it), and the readings must
agree.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.corpus import corpus_root, env_cases, unit_batches
from tests.support.differential import (
    UnitReport,
    qt104_lines,
    read_envs,
    read_units,
    unconfirmed_claims,
    unconfirmed_qt104,
    unit_differences,
)

ROOT = corpus_root()
pytestmark = [
    pytest.mark.sandbox,
    pytest.mark.skipif(
        ROOT is None,
        reason="systemd's source corpus is absent: scripts/setup.sh fetches it "
        "(apt-get source --download-only systemd, cached in .cache/systemd-src)",
    ),
]


@pytest.fixture(scope="module")
def unit_reports() -> Iterator[dict[str, UnitReport]]:
    assert ROOT is not None
    yield {name: read_units(units) for name, units in unit_batches(ROOT).items()}


def test_env_files_agree_with_systemd() -> None:
    assert ROOT is not None
    cases = env_cases(ROOT)
    verdicts = read_envs(cases)
    observable = {k: v for k, v in verdicts.items() if v[0] != "unobservable"}
    disagree = {k: v[1] for k, v in observable.items() if v[0] == "disagree"}
    agree = len(observable) - len(disagree)
    refused = sum(1 for v in observable.values() if v == ("agree", "both refuse"))
    summary = f"env files agree on {agree}/{len(observable)} observable ({len(cases)} in all)"
    assert len(observable) >= 0.98 * len(cases), summary
    assert agree >= 0.99 * len(observable), f"{summary}: {disagree}"
    assert refused >= 100, f"{summary}: only {refused} refused by both (NUL, bad UTF-8)"
    vectors = {k: v for k, v in verdicts.items() if k.startswith("src/test/")}
    assert len(vectors) >= 6 and all(v[0] == "agree" for v in vectors.values()), vectors


def test_unit_files_agree_with_systemd(unit_reports: dict[str, UnitReport]) -> None:
    differences = {
        name: diff
        for report in unit_reports.values()
        for name, view in report.views.items()
        if (diff := unit_differences(name, view))
    }
    total = sum(len(r.views) for r in unit_reports.values())
    summary = f"unit files agree on {total - len(differences)}/{total}"
    assert total >= 350, summary
    assert total - len(differences) >= 0.97 * total, f"{summary}: {differences}"


def test_refusals_are_among_the_readings(unit_reports: dict[str, UnitReport]) -> None:
    refused = [
        name
        for report in unit_reports.values()
        for name, view in report.views.items()
        if view["systemd"]["LoadState"] in ("bad-setting", "error") and view["qtctl"]["refused"]
    ]
    assert len(refused) >= 15, refused  # the corpus has units systemd refuses: qtctl says so too


def test_every_qt104_claim_is_confirmed_by_systemd_at_its_line(
    unit_reports: dict[str, UnitReport],
) -> None:
    unconfirmed = [c for r in unit_reports.values() for c in unconfirmed_claims(r)]
    unconfirmed += [c for r in unit_reports.values() for c in unconfirmed_qt104(r)]
    named = sum(len(qt104_lines(r)) for r in unit_reports.values())
    assert named >= 1000, named
    assert unconfirmed == []


def test_every_line_systemd_complains_about_is_in_qt104(
    unit_reports: dict[str, UnitReport],
) -> None:
    missed = []
    for report in unit_reports.values():
        files = {f for view in report.views.values() for f in view["qtctl"]["files"]}
        lines = {w for w in report.messages if w.rpartition(":")[0] in files}
        missed += sorted(lines - qt104_lines(report))
    assert missed == []
