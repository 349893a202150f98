"""The registry is complete, codes are unique, structured and documented (explain + docs)."""

from __future__ import annotations

import pkgutil
import re
from pathlib import Path

import qtctl.checks
from qtctl.catalog import all_codes
from qtctl.checks import REGISTRY

CHECKS_PAGE = Path(__file__).resolve().parents[1] / "docs/reference/checks.md"


def test_every_check_module_is_registered() -> None:
    modules = {m.name for m in pkgutil.iter_modules(qtctl.checks.__path__)}
    registered = {check.run.__module__.rsplit(".", 1)[-1] for check in REGISTRY}
    assert modules == registered


def test_codes_are_unique_and_structured() -> None:
    codes = [code for check in REGISTRY for code in check.code_ids]
    assert len(codes) == len(set(codes))
    assert all(re.fullmatch(r"QT[1-9]\d\d", code) for code in codes)
    assert len({check.name for check in REGISTRY}) == len(REGISTRY)


def test_every_code_is_documented_in_explain_and_the_checks_reference() -> None:
    page = CHECKS_PAGE.read_text()
    for code, doc in all_codes().items():
        assert doc.title and doc.meaning and doc.why and doc.fix, code
        assert f"\n## {code}\n" in page, f"{code} missing: run `python -m qtctl.docs_gen`"


def test_explain_json_works_for_every_code() -> None:
    """`qtctl explain CODE --format json` is plain JSON for fixable codes too (the repair facts
    type by its name)."""
    import json

    from qtctl.catalog import all_codes
    from tests.conftest import run_cli

    for code, doc in all_codes().items():
        res = run_cli("explain", code, "--format", "json")
        assert res.returncode == 0, (code, res.stderr)
        shown = json.loads(res.stdout)
        assert shown["code"] == code
        assert shown["repair"] == (doc.repair.__name__ if doc.repair else None)
