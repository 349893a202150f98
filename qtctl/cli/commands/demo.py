"""`qtctl demo`: replay the incident on an embedded fleet in a systemd sandbox."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from qtctl.cli.context import global_options
from qtctl.cli.options import FormatOpt
from qtctl.errors import UsageError

if TYPE_CHECKING:
    from qtctl.demo.scenario import Demo
    from qtctl.output import Output

StepOpt = Annotated[bool, typer.Option("--step", envvar="QTCTL_STEP", help="Pause between steps.")]
KeepOpt = Annotated[
    bool,
    typer.Option("--keep", envvar="QTCTL_KEEP", help="Leave the sandbox running at the end."),
]


def demo(
    ctx: typer.Context,
    step: StepOpt = False,
    keep: KeepOpt = False,
    fmt: FormatOpt = None,
) -> None:
    """Replay the incident on an embedded ~70-unit fleet in a systemd sandbox: doctor, fix,
    doctor, report."""
    from qtctl.daemons.rl_agent import TORCH_MISSING, torch_available
    from qtctl.demo.render import StepPrinter, summary
    from qtctl.demo.scenario import Demo
    from qtctl.sandbox import preflight

    out = global_options(ctx).output(fmt)
    problem = preflight()
    if not torch_available():
        out.note(TORCH_MISSING)  # the demo runs (or would run) without the RL agent
    if problem:
        raise UsageError(f"qtctl demo: {problem}; run it as root (sudo)")
    printer = StepPrinter(out, pause=step)
    machine = out.format == "json"
    if not machine:
        printer.intro()
    show = (lambda s: None) if machine else printer
    player = Demo(show, width=out.columns)
    try:
        run = player.play()
    finally:
        _leave(out, player, keep)
    if machine:
        out.json(run.as_dict())
    else:
        summary(out, run)
    raise typer.Exit(0 if run.ok else 1)


def _leave(out: Output, player: Demo, keep: bool) -> None:
    """Keep the sandbox running for the operator (--keep), or tear it down."""
    if keep and player.box.pid:
        out.note(
            f"the sandbox keeps running: enter it with `nsenter -t {player.box.pid} -a "
            f"-r -w bash`, tear it down with `kill -9 {player.box.pid}`"
        )
        player.box.detach()
    else:
        player.close()
