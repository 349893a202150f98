"""`qtctl doctor`: run the checks and render the report."""

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
    RedisUrlOpt,
    SelectOpt,
    StatisticsOpt,
    WriteBaselineOpt,
)

SnapshotOpt = Annotated[
    bool,
    typer.Option(
        "--snapshot-inventory",
        envvar="QTCTL_SNAPSHOT_INVENTORY",
        help="Record the active fleet units as the expected inventory (QT105) first.",
    ),
]
UnitOpt = Annotated[
    str | None,
    typer.Option(
        "--unit",
        envvar="QTCTL_UNIT",
        help="Only what is about this unit (its state, and the code and files behind it).",
    ),
]
PublishIncidentOpt = Annotated[
    bool,
    typer.Option(
        "--publish-incident",
        help="With --unit: publish the unit's incident to report.incident_stream and the "
        "journal (what qtctl-notify@.service runs; reads MONITOR_* from OnFailure=).",
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
    unit: UnitOpt = None,
    publish_incident: PublishIncidentOpt = False,
    statistics: StatisticsOpt = False,
    baseline: BaselineOpt = None,
    write_baseline: WriteBaselineOpt = None,
) -> None:
    """Diagnose the fleet: units, code, Redis streams, services and the host."""
    from qtctl.doctor import run_doctor
    from qtctl.doctor import snapshot_inventory as snapshot
    from qtctl.errors import UsageError
    from qtctl.formats.model import build
    from qtctl.formats.present import Presentation, output_for, present
    from qtctl.onfailure.run import for_unit

    opts = global_options(ctx)
    out, shown = output_for(opts, fmt)
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
    if publish_incident and not unit:
        raise UsageError("--publish-incident needs --unit NAME")
    report = run_doctor(cfg)
    if unit:
        report = for_unit(cfg, report, unit, publish_incident, out)
    how = Presentation(shown, statistics, baseline, write_baseline)
    raise typer.Exit(present(out, cfg, build("doctor", report), how))
