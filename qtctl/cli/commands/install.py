"""`qtctl install`: write qtctl's daemons as hardened systemd units, then enable and start them."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated

import typer

from qtctl.cli.context import global_options
from qtctl.errors import UsageError

if TYPE_CHECKING:
    from qtctl.install import UnitFile
    from qtctl.output import Output

DaemonsArg = Annotated[
    list[str] | None, typer.Argument(help="Daemons to install (bridge), or --all.")
]
AllOpt = Annotated[bool, typer.Option("--all", help="Every shipped daemon.")]
RootOpt = Annotated[
    str, typer.Option("--root", help="Write into this staging tree; systemd is not touched.")
]
UserOpt = Annotated[
    str, typer.Option("--user", help="The dedicated system user (created when missing).")
]
DynamicUserOpt = Annotated[
    bool, typer.Option("--dynamic-user", help="DynamicUser=yes instead (needs nss-systemd).")
]
VenvOpt = Annotated[
    str | None, typer.Option("--venv", help="The venv with bin/qtctl (default: this one).")
]
DaemonConfigOpt = Annotated[
    str | None, typer.Option("--daemon-config", help="Config file the units read (QTCTL_CONFIG).")
]
NoStartOpt = Annotated[
    bool, typer.Option("--no-start", help="Write and reload, do not enable or start.")
]
DryRunOpt = Annotated[
    bool, typer.Option("--dry-run", help="Show what would change, write nothing.")
]
ReportTimerOpt = Annotated[
    bool, typer.Option("--report-timer", help="Also install qtctl-report.service + .timer.")
]
OnFailureOpt = Annotated[
    bool,
    typer.Option(
        "--on-failure",
        help="Also install qtctl-notify@.service and add an OnFailure= drop-in to every fleet "
        "unit (journaled: `qtctl fix --undo ID` takes them back).",
    ),
]
EveryOpt = Annotated[
    str, typer.Option("--every", help="How often the report timer fires (systemd time).")
]
ReportOutputOpt = Annotated[
    str, typer.Option("--report-output", help="The Prometheus textfile the timer writes.")
]
WatchdogOpt = Annotated[
    int, typer.Option("--watchdog-sec", min=2, help="WatchdogSec= of the daemon units.")
]


def install(
    ctx: typer.Context,
    daemons: DaemonsArg = None,
    all_daemons: AllOpt = False,
    root: RootOpt = "/",
    user: UserOpt = "qtctl",
    dynamic_user: DynamicUserOpt = False,
    venv: VenvOpt = None,
    daemon_config: DaemonConfigOpt = None,
    no_start: NoStartOpt = False,
    dry_run: DryRunOpt = False,
    report_timer: ReportTimerOpt = False,
    on_failure: OnFailureOpt = False,
    every: EveryOpt = "5min",
    report_output: ReportOutputOpt = "/var/lib/qtctl-report/qtctl.prom",
    watchdog_sec: WatchdogOpt = 30,
) -> None:
    """Install qtctl's daemons as hardened systemd units (diff shown, atomic, idempotent)."""
    from qtctl.daemons import DAEMONS
    from qtctl.install import InstallOptions, activate, plan, write

    out = global_options(ctx).output()
    chosen = tuple(sorted(DAEMONS)) if all_daemons else tuple(daemons or ())
    options = InstallOptions(
        daemons=_runnable(out, chosen, venv or sys.prefix, explicit=not all_daemons),
        report_timer=report_timer,
        on_failure=on_failure,
        every=every,
        root=root,
        user=user,
        dynamic_user=dynamic_user,
        venv=venv or sys.prefix,
        config_file=daemon_config,
        report_output=report_output,
        watchdog_sec=watchdog_sec,
        start=not no_start,
    )
    units = plan(options)
    _show_plan(out, units)
    if dry_run:
        if on_failure:
            _show_on_failure_plan(ctx, out)
        return
    written = write(units)
    if options.staging:
        return
    for action in activate(units, written, options):
        out.line(f"$ {action}")
    if on_failure:
        _add_on_failure(ctx, out)


def _runnable(out: Output, daemons: tuple[str, ...], venv: str, explicit: bool) -> tuple[str, ...]:
    """The daemons the venv can run: the RL agent needs torch there. Named, it is a usage error
    (exit 2); under --all it is left out with the same line, and the others are installed."""
    from qtctl.daemons.rl_agent import NAME, TORCH_MISSING, torch_available

    if NAME not in daemons or torch_available(venv):
        return daemons
    if explicit:
        raise UsageError(TORCH_MISSING)
    out.note(TORCH_MISSING)
    return tuple(d for d in daemons if d != NAME)


def _show_on_failure_plan(ctx: typer.Context, out: Output) -> None:
    from qtctl.onfailure.dropins import plan_drop_ins

    plan = plan_drop_ins(global_options(ctx).config_for(None, {}))
    for name, why in plan.skipped:
        out.line(f"{name}: would be skipped ({why})")
    for write in plan.writes:
        out.line(f"{write.path}: would be written")


def _add_on_failure(ctx: typer.Context, out: Output) -> None:
    """The OnFailure= drop-ins, through fix's journal (after the template is in place)."""
    from qtctl.onfailure.dropins import apply_drop_ins, plan_drop_ins

    config = global_options(ctx).config_for(None, {})
    plan = plan_drop_ins(config)
    for name, why in plan.skipped:
        out.line(f"{name}: skipped ({why})")
    if not plan.writes:
        out.line("no fleet unit to add OnFailure= to")
        return
    record = apply_drop_ins(config, plan)
    for change in record.changes:
        if change.get("path"):
            out.line(f"{change['path']}: written")
    out.line(f"recorded as {record.id}: `qtctl fix --undo {record.id}` takes the drop-ins back")


def _show_plan(out: Output, units: list[UnitFile]) -> None:
    """Each unit's state (new, changed, unchanged), with the diff of a changed one."""
    from qtctl.redaction import DEFAULT as REDACT

    for unit in units:
        out.line(f"{unit.path}: {unit.state}")
        if unit.state == "changed":  # the installed side may carry an operator's secrets
            out.text(REDACT.shown(unit.diff().rstrip("\n"), keep="\n"))
