"""`qtctl fix`: preview or apply the repairs for what doctor found, or undo one."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from qtctl.cli.context import global_options
from qtctl.cli.options import CommandConfigOpt, FormatOpt, IgnoreOpt, RedisUrlOpt, SelectOpt

if TYPE_CHECKING:
    from qtctl.fix.repair import Repair

ApplyOpt = Annotated[
    bool, typer.Option("--apply", envvar="QTCTL_APPLY", help="Carry out the plan.")
]
UnsafeOpt = Annotated[
    bool, typer.Option("--unsafe", envvar="QTCTL_UNSAFE", help="Allow restarting services.")
]
OnlyOpt = Annotated[
    str | None,
    typer.Option(
        "--only",
        envvar="QTCTL_ONLY",
        help="Units (any of their names) and streams a live-mode repair may touch (comma list).",
    ),
]
ExitZeroOpt = Annotated[
    bool,
    typer.Option(
        "--exit-zero",
        envvar="QTCTL_EXIT_ZERO",
        help="Exit 0 even when the plan holds repairs or a repaired finding remains.",
    ),
]
ExitOnFixOpt = Annotated[
    bool,
    typer.Option(
        "--exit-non-zero-on-fix",
        envvar="QTCTL_EXIT_NON_ZERO_ON_FIX",
        help="With --apply: exit 1 when anything was changed (for cron jobs that alert on it).",
    ),
]
UndoOpt = Annotated[
    str | None,
    typer.Option("--undo", envvar="QTCTL_UNDO", help="Undo a recorded fix: LAST or its id."),
]


def fix(
    ctx: typer.Context,
    apply: ApplyOpt = False,
    unsafe: UnsafeOpt = False,
    only: OnlyOpt = None,
    undo: UndoOpt = None,
    select: SelectOpt = None,
    ignore: IgnoreOpt = None,
    redis_url: RedisUrlOpt = None,
    fmt: FormatOpt = None,
    config: CommandConfigOpt = None,
    exit_zero: ExitZeroOpt = False,
    exit_non_zero_on_fix: ExitOnFixOpt = False,
) -> None:
    """Repair what doctor found: preview by default, --apply to act, journaled and undoable."""
    from qtctl.engine.exitcodes import fix_exit_code
    from qtctl.fix.policy import FixOptions
    from qtctl.fix.render import render_outcome, render_undo
    from qtctl.fix.run import run_fix, run_undo
    from qtctl.redaction import Redactor

    opts = global_options(ctx)
    out = opts.output(fmt)
    flags = {"doctor.select": select, "doctor.ignore": ignore, "redis.url": redis_url}
    cfg = opts.config_for(config, flags)
    redactor = Redactor.of(cfg.services.secret_patterns)
    if undo is not None:  # `--undo ""` is a mistake to report, not a preview
        render_undo(out, *run_undo(cfg, undo), redactor)
        return
    names = tuple(n.strip() for n in (only or "").split(",") if n.strip())
    outcome = run_fix(cfg, FixOptions(apply=apply, unsafe=unsafe, only=names))
    render_outcome(out, outcome, redactor)
    if not apply and outcome.repairs and out.format != "json":
        out.note(_plan_summary([v.repair for v in outcome.repairs]))
    changes = outcome.record.changes if outcome.record else []
    code = fix_exit_code(
        applied=apply,
        planned=len(outcome.repairs),
        changed=any(c.get("kind") != "failed" for c in changes),
        still_failing=not outcome.ok,
        exit_zero=exit_zero,
        exit_non_zero_on_fix=exit_non_zero_on_fix,
    )
    raise typer.Exit(code)


def _plan_summary(repairs: list[Repair]) -> str:
    from qtctl.formats.statistics import plan_summary

    rules = [r.rule if r.held else "" for r in repairs]
    runnable = sum(r.runnable for r in repairs)
    unsafe, only = rules.count("unsafe"), rules.count("live-mode")
    return plan_summary(runnable, unsafe, only, len(repairs) - runnable - unsafe - only)
