"""`qtctl explain`: list the check codes, or document one."""

from __future__ import annotations

from typing import Annotated

import typer

from qtctl.cli.context import global_options
from qtctl.cli.options import FormatOpt
from qtctl.errors import UsageError

CodeArg = Annotated[str | None, typer.Argument(help="A check code such as QT101.")]


def explain(ctx: typer.Context, code: CodeArg = None, fmt: FormatOpt = None) -> None:
    """Explain a check code: what it means, why it matters, how to fix it by hand."""
    from qtctl.catalog import all_codes

    out = global_options(ctx).output(fmt)
    codes = all_codes()
    if code is None:
        out.code_index(codes.values())
        return
    if code.upper() not in codes:
        raise UsageError(f"unknown check code {code!r}; `qtctl explain` lists them")
    out.code_doc(codes[code.upper()])
