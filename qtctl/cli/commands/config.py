"""`qtctl config`: inspect the effective configuration."""

from __future__ import annotations

import typer

from qtctl.cli.context import global_options
from qtctl.cli.options import CommandConfigOpt, FormatOpt, RedisUrlOpt

config_app = typer.Typer(help="Inspect the effective configuration.", no_args_is_help=True)


@config_app.command("show")
def show(
    ctx: typer.Context,
    fmt: FormatOpt = None,
    config: CommandConfigOpt = None,
    redis_url: RedisUrlOpt = None,
) -> None:
    """Print the effective config and where each value came from (secrets masked)."""
    opts = global_options(ctx)
    out = opts.output(fmt)
    cfg = opts.config_for(config, {"redis.url": redis_url})
    out.config_items(cfg.items())
