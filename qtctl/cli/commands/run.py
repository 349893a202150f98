"""`qtctl run`: one of qtctl's daemons in the foreground, as its unit runs it."""

from __future__ import annotations

from typing import Annotated

import typer

from qtctl.cli.context import global_options
from qtctl.cli.options import CommandConfigOpt, RedisUrlOpt
from qtctl.errors import UsageError

DaemonArg = Annotated[str | None, typer.Argument(help="bridge, risk-kernel or rl-agent.")]
OnceOpt = Annotated[
    bool, typer.Option("--once", envvar="QTCTL_ONCE", help="Work until idle once, then exit 0.")
]
ListOpt = Annotated[bool, typer.Option("--list", help="List the daemons qtctl ships.")]
LogFormatOpt = Annotated[
    str,
    typer.Option("--log-format", envvar="QTCTL_LOG_FORMAT", help="text (default) or json lines."),
]


def run(
    ctx: typer.Context,
    daemon: DaemonArg = None,
    once: OnceOpt = False,
    list_daemons: ListOpt = False,
    log_format: LogFormatOpt = "text",
    redis_url: RedisUrlOpt = None,
    config: CommandConfigOpt = None,
) -> None:
    """Run one of qtctl's daemons in the foreground, exactly as its unit does."""
    from qtctl.daemon.launch import available, run_daemon
    from qtctl.daemons.rl_agent import NAME as RL_AGENT
    from qtctl.daemons.rl_agent import TORCH_MISSING, torch_available

    opts = global_options(ctx)
    if list_daemons:
        for name, description in available().items():
            missing = (
                " (torch is not installed)" if name == RL_AGENT and not torch_available() else ""
            )
            typer.echo(f"{name:12} {description}{missing}")
        return
    if not daemon:
        raise UsageError("name a daemon (qtctl run --list shows them)")
    if daemon == RL_AGENT and not torch_available():
        raise UsageError(TORCH_MISSING)  # before importing it: no traceback, exit 2
    if log_format not in ("text", "json"):
        raise UsageError(f"--log-format must be text or json, got {log_format!r}")
    code = run_daemon(
        daemon,
        lambda: opts.config_for(config, {"redis.url": redis_url}),
        once=once,
        log_format=log_format,
        verbose=opts.verbosity > 0,
    )
    raise typer.Exit(code)
