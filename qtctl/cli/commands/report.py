"""`qtctl report`: doctor without fixes, in a monitoring format, for cron and timers."""

from __future__ import annotations

from typing import Annotated, NoReturn

import typer

from qtctl.cli.context import global_options, print_error
from qtctl.cli.options import CommandConfigOpt, FailOnOpt, IgnoreOpt, RedisUrlOpt, SelectOpt

ReportFormatOpt = Annotated[
    str,
    typer.Option(
        "--format",
        "-f",
        envvar="QTCTL_REPORT_FORMAT",
        help="json, markdown, prometheus (node_exporter textfile) or nagios.",
    ),
]
OutputOpt = Annotated[
    str | None,
    typer.Option(
        "--output",
        "-o",
        envvar="QTCTL_OUTPUT",
        help="Write the report to FILE atomically (nothing on stdout).",
    ),
]
PublishOpt = Annotated[
    bool,
    typer.Option(
        "--redis-publish",
        envvar="QTCTL_REDIS_PUBLISH",
        help="Also store it in Redis (report.redis_key hash, report.redis_stream summary).",
    ),
]
WarningOpt = Annotated[
    str,
    typer.Option(
        "--warning",
        envvar="QTCTL_WARNING",
        help="nagios: WARNING when the warning count is outside this range (default 0).",
    ),
]
CriticalOpt = Annotated[
    str,
    typer.Option(
        "--critical",
        envvar="QTCTL_CRITICAL",
        help="nagios: CRITICAL when the error count is outside this range (default 0).",
    ),
]
ExitZeroOpt = Annotated[
    bool,
    typer.Option("--exit-zero", envvar="QTCTL_EXIT_ZERO", help="Exit 0 whatever was found."),
]


def report(
    ctx: typer.Context,
    fmt: ReportFormatOpt = "json",
    output: OutputOpt = None,
    redis_publish: PublishOpt = False,
    exit_zero: ExitZeroOpt = False,
    warning: WarningOpt = "0",
    critical: CriticalOpt = "0",
    select: SelectOpt = None,
    ignore: IgnoreOpt = None,
    fail_on: FailOnOpt = None,
    redis_url: RedisUrlOpt = None,
    config: CommandConfigOpt = None,
) -> None:
    """The cron/timer health report: doctor without fixes, for monitoring."""
    from qtctl.errors import QtctlError
    from qtctl.output import write_raw
    from qtctl.report.run import ReportRequest, run_report

    flags = {
        "doctor.select": select,
        "doctor.ignore": ignore,
        "doctor.fail_on": fail_on,
        "redis.url": redis_url,
    }
    request = ReportRequest(fmt, output, redis_publish, exit_zero, warning, critical)
    try:
        result = run_report(global_options(ctx).config_for(config, flags), request)
    except QtctlError as exc:
        if fmt != "nagios":
            raise
        _unknown(str(exc))  # a plugin that cannot run says UNKNOWN, on stdout, exit 3
    if not result.written_to:
        write_raw(result.text)
    for problem in result.warnings:
        print_error(problem)
    raise typer.Exit(result.exit_code)


def _unknown(message: str) -> NoReturn:
    from qtctl.escaping import shown
    from qtctl.output import write_raw

    write_raw(f"QTCTL UNKNOWN - {shown(message).replace('|', '/')}\n")
    raise typer.Exit(3)
