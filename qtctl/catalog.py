"""Every documented check code, for `qtctl explain` and the registry tests."""

from __future__ import annotations

from qtctl.engine.findings import CodeDoc
from qtctl.engine.runner import INTERNAL_CODE


def all_codes() -> dict[str, CodeDoc]:
    """Code -> documentation, sorted by code."""
    from qtctl.checks import REGISTRY

    docs = [INTERNAL_CODE] + [doc for check in REGISTRY for doc in check.codes]
    return {doc.code: doc for doc in sorted(docs, key=lambda d: d.code)}
