"""`qtctl rl`: what the RL sizing agent learned, read from Redis and its checkpoints."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from qtctl.cli.context import global_options, with_redis
from qtctl.cli.options import CommandConfigOpt, FormatOpt, RedisUrlOpt

if TYPE_CHECKING:
    from qtctl.output import Output

rl_app = typer.Typer(help="What the RL sizing agent learned.", no_args_is_help=True)

PointsOpt = Annotated[
    int, typer.Option("--points", min=2, help="Stats snapshots on the learning curve.")
]
CountOpt = Annotated[
    int, typer.Option("--count", min=2, help="Newest logged decisions to evaluate on.")
]
PolicyOpt = Annotated[
    str,
    typer.Option(
        "--policy",
        envvar="QTCTL_RL_POLICY",
        help="learned (fitted on the training share) or constant:MULTIPLIER.",
    ),
]
TrainOpt = Annotated[
    float,
    typer.Option(
        "--train-fraction",
        min=0.0,
        max=0.95,
        envvar="QTCTL_RL_TRAIN_FRACTION",
        help="Oldest share that fits; the rest is held out.",
    ),
]
ClipOpt = Annotated[
    float,
    typer.Option("--clip", min=1.0, envvar="QTCTL_RL_CLIP", help="Largest importance weight."),
]
STATS_FIELDS = (
    "experiences",
    "rejected",
    "updates",
    "model_version",
    "reward_mean",
    "reward_std",
    "reward_min",
    "reward_max",
    "policy_entropy",
    "multipliers",
)


@rl_app.command("stats")
def stats(
    ctx: typer.Context,
    points: PointsOpt = 60,
    fmt: FormatOpt = None,
    redis_url: RedisUrlOpt = None,
    config: CommandConfigOpt = None,
) -> None:
    """The agent's counters, rejects by reason, and its reward / learning curve."""
    from qtctl.daemons.rl_agent.insight import stats as read_stats

    opts = global_options(ctx)
    out = opts.output(fmt)
    cfg = opts.config_for(config, {"redis.url": redis_url})
    stream = cfg.streams.prefix + cfg.rl.stats_stream
    doc = with_redis(
        cfg, "reading the RL stats", lambda c: read_stats(c, cfg.rl.stats_key, stream, points)
    )
    if out.format == "json":
        out.json(doc)
        return
    if not doc["stats"]:
        out.markup(f"no stats in {cfg.rl.stats_key}: the agent has not run yet")
        raise typer.Exit(1)
    _show_stats(out, doc)


@rl_app.command("evaluate")
def evaluate(
    ctx: typer.Context,
    count: CountOpt = 10_000,
    policy: PolicyOpt = "learned",
    train: TrainOpt = 0.5,
    clip: ClipOpt = 20.0,
    fmt: FormatOpt = None,
    redis_url: RedisUrlOpt = None,
    config: CommandConfigOpt = None,
) -> None:
    """Off-policy value on held-out logged decisions: replay, IPS, SNIPS and DR with 95 % CIs."""
    from qtctl.daemons.rl_agent.insight import evaluate as run_evaluation

    opts = global_options(ctx)
    out = opts.output(fmt)
    cfg = opts.config_for(config, {"redis.url": redis_url})
    doc = with_redis(
        cfg, "reading the decisions", lambda c: run_evaluation(c, cfg, count, policy, train, clip)
    )
    if out.format == "json":
        out.json(doc)
    else:
        for key, value in doc.items():
            if isinstance(value, dict):
                value = f"{value['value']:.8g}  [{value['low']:.8g}, {value['high']:.8g}]"
            out.line(f"{key:16} {value}")
    if "error" in doc:
        raise typer.Exit(1)


def _show_stats(out: Output, doc: dict[str, Any]) -> None:
    """The counters, the rejects by reason (most first) and the two sparklines."""
    from qtctl.daemons.rl_agent.insight import sparkline

    current = doc["stats"]
    for key in STATS_FIELDS:
        out.line(f"{key:16} {current.get(key, '')}")
    for reason, count in sorted(doc["rejects"].items(), key=lambda kv: -kv[1]):
        out.line(f"  rejected {reason:18} {count}")
    out.line(f"reward mean  {sparkline(doc['reward_curve'])}")
    out.line(f"experiences  {sparkline(doc['experience_curve'])}")
