"""Options shared by several commands; every one also reads a QTCTL_* environment variable."""

from __future__ import annotations

from typing import Annotated

import typer

FormatOpt = Annotated[
    str | None,
    typer.Option(
        "--format",
        "-f",
        envvar="QTCTL_FORMAT",
        help="Output format: table, json or markdown; doctor and lint also full (= table), "
        "concise, json-lines, github, gitlab, sarif or junit.",
    ),
]
ConfigOpt = Annotated[
    str | None,
    typer.Option(
        "--config",
        "-c",
        envvar="QTCTL_CONFIG",
        help="TOML config file (default /etc/qtctl/qtctl.toml).",
    ),
]
# After the command: the same option without the environment variable, so that
# `qtctl --config A doctor` with QTCTL_CONFIG=B set reads A (a flag beats the environment).
CommandConfigOpt = Annotated[
    str | None,
    typer.Option("--config", "-c", help="TOML config file (default /etc/qtctl/qtctl.toml)."),
]
RedisUrlOpt = Annotated[
    str | None,
    typer.Option(
        "--redis-url",
        envvar="QTCTL_REDIS_URL",
        help="Redis URL: redis://, rediss:// or unix:// (default redis://127.0.0.1:6379/0).",
    ),
]
SelectOpt = Annotated[
    str | None,
    typer.Option(
        "--select",
        envvar="QTCTL_SELECT",
        help="Only these code prefixes, comma-separated (QT1,QT4).",
    ),
]
IgnoreOpt = Annotated[
    str | None,
    typer.Option(
        "--ignore", envvar="QTCTL_IGNORE", help="Skip these code prefixes, comma-separated (QT402)."
    ),
]
FailOnOpt = Annotated[
    str | None,
    typer.Option(
        "--fail-on",
        envvar="QTCTL_FAIL_ON",
        help="Exit 1 at or above this severity: error (default), warning, info or never.",
    ),
]
StatisticsOpt = Annotated[
    bool,
    typer.Option(
        "--statistics",
        envvar="QTCTL_STATISTICS",
        help="Count the findings per code (most frequent first, [*] fixable) instead.",
    ),
]
BaselineOpt = Annotated[
    str | None,
    typer.Option(
        "--baseline",
        envvar="QTCTL_BASELINE",
        help="Findings in this baseline file are acknowledged: listed, not failing.",
    ),
]
WriteBaselineOpt = Annotated[
    str | None,
    typer.Option(
        "--write-baseline",
        envvar="QTCTL_WRITE_BASELINE",
        help="Write every finding of this run to a baseline file (and acknowledge them).",
    ),
]
