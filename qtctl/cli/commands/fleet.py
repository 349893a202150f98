"""`qtctl fleet`: every host's latest report from the shared Redis, in one view."""

from __future__ import annotations

import typer

from qtctl.cli.context import global_options
from qtctl.cli.options import CommandConfigOpt, FormatOpt, RedisUrlOpt


def fleet(
    ctx: typer.Context,
    fmt: FormatOpt = None,
    redis_url: RedisUrlOpt = None,
    config: CommandConfigOpt = None,
) -> None:
    """Every host's latest report, its age, its incidents, and streams shared between hosts."""
    import time

    from qtctl.adapters.redis_client import RedisAdapter
    from qtctl.errors import AdapterUnavailable, QtctlError, UsageError
    from qtctl.hosts.render import as_dict, render
    from qtctl.hosts.store import read_hosts
    from qtctl.hosts.view import build_view

    opts = global_options(ctx)
    out = opts.output(fmt)
    if out.format not in ("table", "json"):
        raise UsageError(f"qtctl fleet: --format table or json, not {out.format!r}")
    cfg = opts.config_for(config, {"redis.url": redis_url})
    try:
        adapter = RedisAdapter.connect(cfg.redis)
        try:
            with adapter.guard("reading the hosts' reports"):
                stored = read_hosts(adapter.client, cfg.report.redis_key)
        finally:
            adapter.close()
    except AdapterUnavailable as exc:
        raise QtctlError(f"cannot read the fleet's reports: {exc.reason}") from None
    view = build_view(stored, time.time(), cfg.report.period_sec, cfg.report.stale_periods)
    if out.format == "json":
        out.json(as_dict(view))
    else:
        render(out, view)
    raise typer.Exit(1 if view.unhealthy else 0)
