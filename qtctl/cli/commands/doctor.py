"""`qtctl doctor`: run the checks and render the report."""

from __future__ import annotations

from typing import Annotated

import typer

from qtctl.cli.context import global_options
from qtctl.cli.options import (
    CommandConfigOpt,
    FailOnOpt,
    FormatOpt,
    IgnoreOpt,
    RedisUrlOpt,
    SelectOpt,
)

SnapshotOpt = Annotated[
    bool,
    typer.Option(
        "--snapshot-inventory",
        envvar="QTCTL_SNAPSHOT_INVENTORY",
        help="Record the active fleet units as the expected inventory (QT105) first.",
    ),
]


def doctor(
    ctx: typer.Context,
    select: SelectOpt = None,
    ignore: IgnoreOpt = None,
    fail_on: FailOnOpt = None,
    redis_url: RedisUrlOpt = None,
    fmt: FormatOpt = None,
    config: CommandConfigOpt = None,
    snapshot_inventory: SnapshotOpt = False,
) -> None:
    """Diagnose the fleet: units, code, Redis streams, services and the host."""
    from qtctl.doctor import run_doctor
    from qtctl.doctor import snapshot_inventory as snapshot
    from qtctl.engine.exitcodes import exit_code

    opts = global_options(ctx)
    out = opts.output(fmt)
    flags = {
        "doctor.select": select,
        "doctor.ignore": ignore,
        "doctor.fail_on": fail_on,
        "redis.url": redis_url,
    }
    cfg = opts.config_for(config, flags)
    if snapshot_inventory:
        path, count = snapshot(cfg)
        out.note(f"recorded {count} active fleet units as the expected inventory in {path}")
    report = run_doctor(cfg)
    out.report(report)
    raise typer.Exit(exit_code(report, cfg.doctor.fail_on))
