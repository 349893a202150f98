"""The Check contract: a named function from a context to findings, plus its code docs."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from qtctl.engine.context import CheckContext
from qtctl.engine.findings import CodeDoc, Finding

CheckFn = Callable[[CheckContext], Iterable[Finding]]


@dataclass(frozen=True)
class Check:
    """One check: it never mutates anything and only reaches the world through the context."""

    name: str
    codes: tuple[CodeDoc, ...]
    run: CheckFn

    @property
    def code_ids(self) -> tuple[str, ...]:
        """The codes this check can emit."""
        return tuple(doc.code for doc in self.codes)


def matches(code: str, prefixes: Iterable[str]) -> bool:
    """Whether a code is selected by any prefix (`QT4` selects QT401, QT402, ...)."""
    return any(code.upper().startswith(p.strip().upper()) for p in prefixes if p.strip())


def is_selected(code: str, select: tuple[str, ...], ignore: tuple[str, ...]) -> bool:
    """flake8/ruff-style selection: the longest matching prefix wins, a tie ignores."""
    selected = [len(p) for p in select if matches(code, [p])]
    if select and not selected:
        return False
    ignored = [len(p) for p in ignore if matches(code, [p])]
    return max(selected, default=0) > max(ignored, default=-1)
