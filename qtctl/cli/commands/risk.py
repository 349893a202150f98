"""`qtctl risk`: the risk kernel's rules, offline."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from qtctl.cli.context import global_options, with_redis
from qtctl.cli.options import CommandConfigOpt, FormatOpt, RedisUrlOpt
from qtctl.errors import UsageError

if TYPE_CHECKING:
    from qtctl.config import Config
    from qtctl.daemons.risk_kernel.replay import Tick

risk_app = typer.Typer(help="The risk kernel's rules, offline.", no_args_is_help=True)

SourceArg = Annotated[
    str,
    typer.Argument(
        help="A CSV file (timestamp, symbol, price[, open, leverage, sigma, ...]), or "
        "stream:NAME for a Redis stream of such entries."
    ),
]
SetOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--set",
        envvar="QTCTL_RISK_SET",
        help="Override a [risk] setting for this run, name=value (repeatable): stoploss_pct=5.",
    ),
]


@risk_app.command("replay")
def replay(
    ctx: typer.Context,
    source: SourceArg,
    overrides: SetOpt = None,
    fmt: FormatOpt = None,
    redis_url: RedisUrlOpt = None,
    config: CommandConfigOpt = None,
) -> None:
    """Run the kernel over recorded prices: exits by reason, R, MAE/MFE, time in trade."""
    from qtctl.daemons.risk_kernel import replay as engine
    from qtctl.daemons.risk_kernel.daemon import params_of

    opts = global_options(ctx)
    out = opts.output(fmt)
    cfg = opts.config_for(config, {"redis.url": redis_url, **_flags(overrides or [])})
    ticks = _ticks(cfg, source)
    doc = engine.summary(engine.replay(ticks, params_of(cfg.risk)))
    doc = {"format": "qtctl.risk-replay/1", "ticks": len(ticks), **doc}
    if out.format == "json":
        out.json(_finite(doc))
        return
    out.table(f"replay of {len(ticks)} prices", engine.COLUMNS, engine.rows(doc))


def _finite(value: Any) -> Any:
    """NaN (no trade to average) as null: JSON has no NaN."""
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, float) and value != value:
        return None
    return value


def _flags(overrides: list[str]) -> dict[str, Any]:
    flags = {}
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--set takes name=value (a [risk] setting), got {item!r}")
        key = key.strip()
        flags[key if key.startswith("risk.") else f"risk.{key}"] = value
    return flags


def _ticks(cfg: Config, source: str) -> list[Tick]:
    from qtctl.daemons.risk_kernel import replay as engine

    if not source.startswith("stream:"):
        path = Path(source)
        if not path.is_file():
            raise UsageError(f"no price file at {source}")
        ticks: list[Tick] = engine.read_csv(path)
        return ticks
    name = source[len("stream:") :]
    key = name if name.startswith(cfg.streams.prefix) else cfg.streams.prefix + name
    rows = with_redis(cfg, f"reading {key}", lambda client: _entries(client, key))
    ticks = engine.ticks_of(rows)
    return ticks


def _row(fields: dict[str, str]) -> dict[str, Any]:
    inner = fields.get("payload") or fields.get("data")
    if not inner:
        return dict(fields)
    try:
        row = json.loads(inner)
    except ValueError:
        row = None
    if not isinstance(row, dict):
        raise UsageError(f"a stream entry's payload is not a JSON object: {inner[:60]!r}")
    return row


def _entries(client: Any, key: str) -> list[dict[str, str]]:
    """Every entry of the stream, flat or wrapped in a JSON `payload`/`data` field."""
    rows, start = [], "-"
    while True:
        batch = client.xrange(key, min=start, count=1000)
        for entry_id, fields in batch:
            row = _row(fields)
            row.setdefault("timestamp", str(int(entry_id.split("-")[0]) / 1000))
            rows.append({str(k): str(v) for k, v in row.items()})
        if len(batch) < 1000:
            return rows
        start = "(" + batch[-1][0]
