"""`qtctl streams`: work with the fleet's Redis streams."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from qtctl.cli.context import global_options, with_redis
from qtctl.cli.options import CommandConfigOpt, RedisUrlOpt
from qtctl.errors import UsageError

streams_app = typer.Typer(help="Work with the fleet's Redis streams.", no_args_is_help=True)

ArchiveArg = Annotated[str, typer.Argument(help="A .jsonl.gz archive written by qtctl fix.")]
IntoOpt = Annotated[
    str, typer.Option("--into", envvar="QTCTL_INTO", help="Stream key to restore into.")
]


@streams_app.command("restore")
def restore(
    ctx: typer.Context,
    archive: ArchiveArg,
    into: IntoOpt,
    redis_url: RedisUrlOpt = None,
    config: CommandConfigOpt = None,
) -> None:
    """XADD every archived entry, with its original ID and in order, into an empty stream."""
    opts = global_options(ctx)
    cfg = opts.config_for(config, {"redis.url": redis_url})
    path = Path(archive)
    if not path.is_file():
        raise UsageError(f"no archive at {archive}")
    count = with_redis(cfg, "the restore", lambda client: _restore(client, path, into))
    opts.output().markup(f"restored {count} entries into {into}")


def _restore(client: Any, archive: Path, into: str) -> int:
    """Restore the archive; its ValueError (bad archive, later IDs in the key) is a usage error."""
    from qtctl.adapters.stream_archive import restore as restore_archive

    try:
        return restore_archive(client, archive, into)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
