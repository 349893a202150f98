"""`qtctl uninstall`: stop, disable and remove the units `qtctl install` wrote."""

from __future__ import annotations

from typing import Annotated

import typer

from qtctl.cli.context import global_options

DaemonsArg = Annotated[list[str] | None, typer.Argument(help="Daemons to remove.")]
AllOpt = Annotated[bool, typer.Option("--all", help="Every shipped daemon.")]
ReportTimerOpt = Annotated[
    bool, typer.Option("--report-timer", help="Also the report service and timer.")
]
RootOpt = Annotated[str, typer.Option("--root", help="A staging tree instead of /.")]


def uninstall(
    ctx: typer.Context,
    daemons: DaemonsArg = None,
    all_daemons: AllOpt = False,
    report_timer: ReportTimerOpt = False,
    root: RootOpt = "/",
) -> None:
    """Stop, disable and remove units `qtctl install` wrote."""
    from qtctl.daemons import DAEMONS
    from qtctl.install import InstallOptions
    from qtctl.install import uninstall as remove

    chosen = tuple(sorted(DAEMONS)) if all_daemons else tuple(daemons or ())
    options = InstallOptions(daemons=chosen, report_timer=report_timer, root=root)
    out = global_options(ctx).output()
    done = remove(options)
    if not done:
        out.line("nothing installed")
    for action in done:
        out.line(f"$ {action}")
