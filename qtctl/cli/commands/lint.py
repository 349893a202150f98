"""`qtctl lint`: doctor's static checks on a repository checkout, for CI and pre-commit."""

from __future__ import annotations

from typing import Annotated

import typer

from qtctl.cli.context import global_options
from qtctl.cli.options import (
    BaselineOpt,
    CommandConfigOpt,
    FailOnOpt,
    FormatOpt,
    IgnoreOpt,
    SelectOpt,
    StatisticsOpt,
    WriteBaselineOpt,
)

PathsArg = Annotated[
    list[str] | None,
    typer.Argument(help="Files and folders of the checkout (default: the current folder)."),
]
PathMapOpt = Annotated[
    str | None,
    typer.Option(
        "--path-map",
        envvar="QTCTL_PATH_MAP",
        help="DEPLOY=CHECKOUT pairs, comma-separated (lint.path_map), such as "
        "/home/qt/quantum_trader=.",
    ),
]


def lint(
    ctx: typer.Context,
    paths: PathsArg = None,
    select: SelectOpt = None,
    ignore: IgnoreOpt = None,
    fail_on: FailOnOpt = None,
    path_map: PathMapOpt = None,
    fmt: FormatOpt = None,
    statistics: StatisticsOpt = False,
    baseline: BaselineOpt = None,
    write_baseline: WriteBaselineOpt = None,
    config: CommandConfigOpt = None,
) -> None:
    """Check a checkout before deploy: unit files, executed scripts, sources, imports, env files."""
    import os

    from qtctl.errors import UsageError
    from qtctl.formats.present import Presentation, output_for, present
    from qtctl.lint.run import run_lint

    opts = global_options(ctx)
    out, shown = output_for(opts, fmt)
    flags = {
        "doctor.select": select,
        "doctor.ignore": ignore,
        "doctor.fail_on": fail_on,
        "lint.path_map": path_map,
    }
    cfg = opts.config_for(config, flags)
    targets = paths or ["."]
    missing = [p for p in targets if not os.path.lexists(p)]
    if missing:
        raise UsageError(f"no such file or folder: {missing[0]}")
    from qtctl.lint.tree import target_refusal

    refused = next(filter(None, map(target_refusal, targets)), "")
    if refused:
        raise UsageError(f"not linted: {refused}")
    results = run_lint(cfg, targets)
    how = Presentation(shown, statistics, baseline, write_baseline, state_acks=False)
    raise typer.Exit(present(out, cfg, results, how))
