"""The `qtctl` command tree. Commands stay thin: parse, build config, call the library, render."""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any

import typer

try:  # typer >= 0.26 vendors click; older typer (the pinned one) uses click itself
    from typer import TyperException as UsageFailure  # type: ignore[attr-defined]
except ImportError:
    from click import ClickException as UsageFailure

from qtctl import __version__
from qtctl.cli.options import (
    CommandConfigOpt,
    ConfigOpt,
    FailOnOpt,
    FormatOpt,
    IgnoreOpt,
    RedisUrlOpt,
    SelectOpt,
)
from qtctl.errors import QtctlError, UsageError

if TYPE_CHECKING:  # rich and the config machinery load only when a command needs them
    from qtctl.config import Config
    from qtctl.output import Output

FORMATS = ("table", "json", "markdown")

app = typer.Typer(
    name="qtctl",
    help="Operator toolkit for Python trading fleets on systemd and Redis Streams.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
config_app = typer.Typer(help="Inspect the effective configuration.", no_args_is_help=True)
app.add_typer(config_app, name="config")
streams_app = typer.Typer(help="Work with the fleet's Redis streams.", no_args_is_help=True)
app.add_typer(streams_app, name="streams")
rl_app = typer.Typer(help="What the RL sizing agent learned.", no_args_is_help=True)
app.add_typer(rl_app, name="rl")


@dataclass
class GlobalOptions:
    """Options given before the command; a command's own --format/--config wins."""

    config: str | None
    format: str
    color: bool
    verbosity: int

    def output(self, fmt: str | None = None) -> Output:
        """The Output for this invocation."""
        from qtctl.output import Output

        chosen = fmt or self.format
        if chosen not in FORMATS:
            raise UsageError(f"--format must be one of {', '.join(FORMATS)}, got {chosen!r}")
        return Output(format=chosen, color=self.color, verbosity=self.verbosity)

    def config_for(self, config: str | None, flags: dict[str, Any] | None = None) -> Config:
        """Load the effective config, command-level --config first."""
        from qtctl.config import load_config

        return load_config(config or self.config, flags)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"qtctl {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(
    ctx: typer.Context,
    config: ConfigOpt = None,
    fmt: FormatOpt = None,
    no_color: Annotated[
        bool, typer.Option("--no-color", envvar="QTCTL_NO_COLOR", help="No colors (also NO_COLOR).")
    ] = False,
    verbose: Annotated[
        int,
        typer.Option(
            "-v",
            "--verbose",
            count=True,
            envvar="QTCTL_VERBOSE",
            help="More detail; -vv for debug logs.",
        ),
    ] = 0,
    quiet: Annotated[
        bool, typer.Option("-q", "--quiet", envvar="QTCTL_QUIET", help="Only results and errors.")
    ] = False,
    version: Annotated[
        bool | None,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = None,
) -> None:
    """Operator toolkit for Python trading fleets on systemd and Redis Streams."""
    verbosity = -1 if quiet else verbose
    ctx.obj = GlobalOptions(config, fmt or "table", not no_color, verbosity)
    level = {-1: logging.WARNING, 0: logging.WARNING, 1: logging.INFO}.get(verbosity, logging.DEBUG)
    logging.basicConfig(
        level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )


@app.command()
def doctor(
    ctx: typer.Context,
    select: SelectOpt = None,
    ignore: IgnoreOpt = None,
    fail_on: FailOnOpt = None,
    redis_url: RedisUrlOpt = None,
    fmt: FormatOpt = None,
    config: CommandConfigOpt = None,
    snapshot_inventory: Annotated[
        bool,
        typer.Option(
            "--snapshot-inventory",
            envvar="QTCTL_SNAPSHOT_INVENTORY",
            help="Record the active fleet units as the expected inventory (QT105) first.",
        ),
    ] = False,
) -> None:
    """Diagnose the fleet: units, code, Redis streams, services and the host."""
    from qtctl.doctor import run_doctor
    from qtctl.doctor import snapshot_inventory as snapshot
    from qtctl.engine.exitcodes import exit_code

    opts: GlobalOptions = ctx.obj
    out = opts.output(fmt)
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
    report = run_doctor(cfg)
    out.report(report)
    raise typer.Exit(exit_code(report, cfg.doctor.fail_on))


@app.command()
def fix(
    ctx: typer.Context,
    apply: Annotated[
        bool, typer.Option("--apply", envvar="QTCTL_APPLY", help="Carry out the plan.")
    ] = False,
    unsafe: Annotated[
        bool,
        typer.Option("--unsafe", envvar="QTCTL_UNSAFE", help="Allow restarting services."),
    ] = False,
    only: Annotated[
        str | None,
        typer.Option("--only", envvar="QTCTL_ONLY", help="Units allowed to restart (comma list)."),
    ] = None,
    undo: Annotated[
        str | None,
        typer.Option("--undo", envvar="QTCTL_UNDO", help="Undo a recorded fix: LAST or its id."),
    ] = None,
    select: SelectOpt = None,
    ignore: IgnoreOpt = None,
    redis_url: RedisUrlOpt = None,
    fmt: FormatOpt = None,
    config: CommandConfigOpt = None,
) -> None:
    """Repair what doctor found: preview by default, --apply to act, journaled and undoable."""
    from qtctl.fix.policy import FixOptions
    from qtctl.fix.render import render_outcome, render_undo
    from qtctl.fix.run import run_fix, run_undo

    opts: GlobalOptions = ctx.obj
    out = opts.output(fmt)
    flags = {"doctor.select": select, "doctor.ignore": ignore, "redis.url": redis_url}
    cfg = opts.config_for(config, flags)
    if undo:
        render_undo(out, *run_undo(cfg, undo))
        return
    names = tuple(n.strip() for n in (only or "").split(",") if n.strip())
    outcome = run_fix(cfg, FixOptions(apply=apply, unsafe=unsafe, only=names))
    render_outcome(out, outcome)
    raise typer.Exit(0 if outcome.ok else 1)


@app.command()
def explain(
    ctx: typer.Context,
    code: Annotated[str | None, typer.Argument(help="A check code such as QT101.")] = None,
    fmt: FormatOpt = None,
) -> None:
    """Explain a check code: what it means, why it matters, how to fix it by hand."""
    from qtctl.catalog import all_codes

    out = ctx.obj.output(fmt)
    codes = all_codes()
    if code is None:
        for doc in codes.values():
            out.out.print(f"[bold]{doc.code}[/]  {doc.title} ({doc.severity})")
        return
    if code.upper() not in codes:
        raise UsageError(f"unknown check code {code!r}; `qtctl explain` lists them")
    out.code_doc(codes[code.upper()])


@app.command()
def run(
    ctx: typer.Context,
    daemon: Annotated[str | None, typer.Argument(help="bridge, risk-kernel or rl-agent.")] = None,
    once: Annotated[
        bool,
        typer.Option("--once", envvar="QTCTL_ONCE", help="Work until idle once, then exit 0."),
    ] = False,
    list_daemons: Annotated[
        bool, typer.Option("--list", help="List the daemons qtctl ships.")
    ] = False,
    log_format: Annotated[
        str,
        typer.Option(
            "--log-format", envvar="QTCTL_LOG_FORMAT", help="text (default) or json lines."
        ),
    ] = "text",
    redis_url: RedisUrlOpt = None,
    config: CommandConfigOpt = None,
) -> None:
    """Run one of qtctl's daemons in the foreground, exactly as its unit does."""
    from qtctl.daemon.launch import available, run_daemon

    opts: GlobalOptions = ctx.obj
    if list_daemons:
        for name, description in available().items():
            typer.echo(f"{name:12} {description}")
        return
    if not daemon:
        raise UsageError("name a daemon (qtctl run --list shows them)")
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


@app.command()
def install(
    ctx: typer.Context,
    daemons: Annotated[
        list[str] | None, typer.Argument(help="Daemons to install (bridge), or --all.")
    ] = None,
    all_daemons: Annotated[bool, typer.Option("--all", help="Every shipped daemon.")] = False,
    root: Annotated[
        str, typer.Option("--root", help="Write into this staging tree; systemd is not touched.")
    ] = "/",
    user: Annotated[
        str,
        typer.Option("--user", help="The dedicated system user (created when missing)."),
    ] = "qtctl",
    dynamic_user: Annotated[
        bool,
        typer.Option("--dynamic-user", help="DynamicUser=yes instead (needs nss-systemd)."),
    ] = False,
    venv: Annotated[
        str | None, typer.Option("--venv", help="The venv with bin/qtctl (default: this one).")
    ] = None,
    daemon_config: Annotated[
        str | None,
        typer.Option("--daemon-config", help="Config file the units read (QTCTL_CONFIG)."),
    ] = None,
    no_start: Annotated[
        bool, typer.Option("--no-start", help="Write and reload, do not enable or start.")
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show what would change, write nothing.")
    ] = False,
    report_timer: Annotated[
        bool, typer.Option("--report-timer", help="Also install qtctl-report.service + .timer.")
    ] = False,
    every: Annotated[
        str, typer.Option("--every", help="How often the report timer fires (systemd time).")
    ] = "5min",
    report_output: Annotated[
        str, typer.Option("--report-output", help="The Prometheus textfile the timer writes.")
    ] = "/var/lib/qtctl-report/qtctl.prom",
    watchdog_sec: Annotated[
        int, typer.Option("--watchdog-sec", min=2, help="WatchdogSec= of the daemon units.")
    ] = 30,
) -> None:
    """Install qtctl's daemons as hardened systemd units (diff shown, atomic, idempotent)."""
    from qtctl.daemons import DAEMONS
    from qtctl.install import InstallOptions, activate, plan, write

    out = ctx.obj.output()
    chosen = tuple(sorted(DAEMONS)) if all_daemons else tuple(daemons or ())
    options = InstallOptions(
        daemons=chosen,
        report_timer=report_timer,
        every=every,
        root=root,
        user=user,
        dynamic_user=dynamic_user,
        venv=venv or sys.prefix,
        config_file=daemon_config,
        report_output=report_output,
        watchdog_sec=watchdog_sec,
        start=not no_start,
    )
    units = plan(options)
    for unit in units:
        out.out.print(f"{unit.path}: {unit.state}", markup=False, highlight=False)
        if unit.state == "changed":
            out.text(unit.diff().rstrip("\n"))
    if dry_run:
        return
    written = write(units)
    if options.staging:
        return
    for action in activate(units, written, options):
        out.out.print(f"$ {action}", markup=False, highlight=False)


@app.command()
def demo(
    ctx: typer.Context,
    step: Annotated[
        bool, typer.Option("--step", envvar="QTCTL_STEP", help="Pause between steps.")
    ] = False,
    keep: Annotated[
        bool,
        typer.Option("--keep", envvar="QTCTL_KEEP", help="Leave the sandbox running at the end."),
    ] = False,
    fmt: FormatOpt = None,
) -> None:
    """Replay the incident on an embedded ~70-unit fleet in a systemd sandbox: doctor, fix,
    doctor, report."""
    from qtctl.demo.render import StepPrinter, summary
    from qtctl.demo.scenario import Demo
    from qtctl.sandbox import preflight

    out: Output = ctx.obj.output(fmt)
    problem = preflight()
    if problem:
        raise UsageError(f"qtctl demo: {problem}; run it as root (sudo)")
    printer = StepPrinter(out, pause=step)
    machine = out.format == "json"
    if not machine:
        printer.intro()
    show = (lambda s: None) if machine else printer
    player = Demo(show, width=out.out.width)
    try:
        run = player.play()
    finally:
        if keep and player.box.pid:
            out.note(f"the sandbox keeps running: enter it with `nsenter -t {player.box.pid} -a "
                     f"-r -w bash`, tear it down with `kill -9 {player.box.pid}`")
            player.box.detach()
        else:
            player.close()
    if machine:
        out.json(run.as_dict())
    else:
        summary(out, run)
    raise typer.Exit(0 if run.ok else 1)


@app.command()
def uninstall(
    ctx: typer.Context,
    daemons: Annotated[list[str] | None, typer.Argument(help="Daemons to remove.")] = None,
    all_daemons: Annotated[bool, typer.Option("--all", help="Every shipped daemon.")] = False,
    report_timer: Annotated[
        bool, typer.Option("--report-timer", help="Also the report service and timer.")
    ] = False,
    root: Annotated[str, typer.Option("--root", help="A staging tree instead of /.")] = "/",
) -> None:
    """Stop, disable and remove units `qtctl install` wrote."""
    from qtctl.daemons import DAEMONS
    from qtctl.install import InstallOptions
    from qtctl.install import uninstall as remove

    chosen = tuple(sorted(DAEMONS)) if all_daemons else tuple(daemons or ())
    options = InstallOptions(daemons=chosen, report_timer=report_timer, root=root)
    out = ctx.obj.output()
    done = remove(options)
    if not done:
        out.out.print("nothing installed")
    for action in done:
        out.out.print(f"$ {action}", markup=False, highlight=False)


@app.command()
def report(
    ctx: typer.Context,
    fmt: Annotated[
        str,
        typer.Option(
            "--format",
            "-f",
            envvar="QTCTL_REPORT_FORMAT",
            help="json, markdown, prometheus (node_exporter textfile) or nagios.",
        ),
    ] = "json",
    output: Annotated[
        str | None,
        typer.Option(
            "--output",
            "-o",
            envvar="QTCTL_OUTPUT",
            help="Write the report to FILE atomically (nothing on stdout).",
        ),
    ] = None,
    redis_publish: Annotated[
        bool,
        typer.Option(
            "--redis-publish",
            envvar="QTCTL_REDIS_PUBLISH",
            help="Also store it in Redis (report.redis_key hash, report.redis_stream summary).",
        ),
    ] = False,
    exit_zero: Annotated[
        bool,
        typer.Option("--exit-zero", envvar="QTCTL_EXIT_ZERO", help="Exit 0 whatever was found."),
    ] = False,
    select: SelectOpt = None,
    ignore: IgnoreOpt = None,
    fail_on: FailOnOpt = None,
    redis_url: RedisUrlOpt = None,
    config: CommandConfigOpt = None,
) -> None:
    """The cron/timer health report: doctor without fixes, for monitoring."""
    from qtctl.output import write_raw
    from qtctl.report.run import ReportRequest, run_report

    opts: GlobalOptions = ctx.obj
    flags = {
        "doctor.select": select,
        "doctor.ignore": ignore,
        "doctor.fail_on": fail_on,
        "redis.url": redis_url,
    }
    cfg = opts.config_for(config, flags)
    result = run_report(cfg, ReportRequest(fmt, output, redis_publish, exit_zero))
    if not result.written_to:
        write_raw(result.text)
    for warning in result.warnings:
        _print_error(warning)
    raise typer.Exit(result.exit_code)


@config_app.command("show")
def config_show(
    ctx: typer.Context,
    fmt: FormatOpt = None,
    config: CommandConfigOpt = None,
    redis_url: RedisUrlOpt = None,
) -> None:
    """Print the effective config and where each value came from (secrets masked)."""
    opts: GlobalOptions = ctx.find_root().obj
    out = opts.output(fmt)
    cfg = opts.config_for(config, {"redis.url": redis_url})
    rows = cfg.items()
    if out.format == "json":
        out.json({key: {"value": value, "source": src} for key, value, src in rows})
        return
    if out.format == "markdown":
        lines = ["| key | value | source |", "|---|---|---|"]
        lines += [f"| {key} | `{_shown(value)}` | {src} |" for key, value, src in rows]
        out.text("\n".join(lines))
        return
    from rich.table import Table

    table = Table("key", "value", "source")
    for key, value, src in rows:
        table.add_row(key, _shown(value), src)
    out.out.print(table)


@streams_app.command("restore")
def streams_restore(
    ctx: typer.Context,
    archive: Annotated[str, typer.Argument(help="A .jsonl.gz archive written by qtctl fix.")],
    into: Annotated[
        str, typer.Option("--into", envvar="QTCTL_INTO", help="Stream key to restore into.")
    ],
    redis_url: RedisUrlOpt = None,
    config: CommandConfigOpt = None,
) -> None:
    """XADD every archived entry, with its original ID and in order, into an empty stream."""
    from pathlib import Path

    from qtctl.adapters.redis_client import RedisAdapter
    from qtctl.adapters.stream_archive import restore

    opts: GlobalOptions = ctx.find_root().obj
    cfg = opts.config_for(config, {"redis.url": redis_url})
    if not Path(archive).is_file():
        raise UsageError(f"no archive at {archive}")
    adapter = RedisAdapter.connect(cfg.redis)
    try:
        with adapter.guard("the restore"):
            count = restore(adapter.client, Path(archive), into)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    finally:
        adapter.close()
    opts.output().out.print(f"restored {count} entries into {into}")


@rl_app.command("stats")
def rl_stats(
    ctx: typer.Context,
    points: Annotated[
        int, typer.Option("--points", min=2, help="Stats snapshots on the learning curve.")
    ] = 60,
    fmt: FormatOpt = None,
    redis_url: RedisUrlOpt = None,
    config: CommandConfigOpt = None,
) -> None:
    """The agent's counters, rejects by reason, and its reward / learning curve."""
    from qtctl.daemons.rl_agent.insight import sparkline, stats

    opts: GlobalOptions = ctx.find_root().obj
    out = opts.output(fmt)
    cfg = opts.config_for(config, {"redis.url": redis_url})
    stream = cfg.streams.prefix + cfg.rl.stats_stream
    doc = _with_redis(
        cfg, "reading the RL stats", lambda c: stats(c, cfg.rl.stats_key, stream, points)
    )
    if out.format == "json":
        out.json(doc)
        return
    current = doc["stats"]
    if not current:
        out.out.print(f"no stats in {cfg.rl.stats_key}: the agent has not run yet")
        raise typer.Exit(1)
    for key in (
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
    ):
        out.out.print(f"{key:16} {current.get(key, '')}", markup=False, highlight=False)
    for reason, count in sorted(doc["rejects"].items(), key=lambda kv: -kv[1]):
        out.out.print(f"  rejected {reason:18} {count}", markup=False, highlight=False)
    out.out.print(f"reward mean  {sparkline(doc['reward_curve'])}", markup=False)
    out.out.print(f"experiences  {sparkline(doc['experience_curve'])}", markup=False)


@rl_app.command("evaluate")
def rl_evaluate(
    ctx: typer.Context,
    count: Annotated[
        int, typer.Option("--count", min=1, help="Newest trade.closed records to evaluate on.")
    ] = 10_000,
    fmt: FormatOpt = None,
    redis_url: RedisUrlOpt = None,
    config: CommandConfigOpt = None,
) -> None:
    """Offline evaluation of the latest checkpoint on logged trades (IPS and direct method)."""
    from qtctl.daemons.rl_agent.insight import evaluate

    opts: GlobalOptions = ctx.find_root().obj
    out = opts.output(fmt)
    cfg = opts.config_for(config, {"redis.url": redis_url})
    doc = _with_redis(cfg, "reading trade.closed", lambda c: evaluate(c, cfg, count))
    if out.format == "json":
        out.json(doc)
    else:
        for key, value in doc.items():
            shown = f"{value:.6f}" if isinstance(value, float) else str(value)
            out.out.print(f"{key:20} {shown}", markup=False, highlight=False)
    if "error" in doc:
        raise typer.Exit(1)


def _with_redis(cfg: Config, what: str, call: Any) -> Any:
    """Connect, run `call(client)` under the connection guard, always disconnect."""
    from qtctl.adapters.redis_client import RedisAdapter

    adapter = RedisAdapter.connect(cfg.redis)
    try:
        with adapter.guard(what):
            return call(adapter.client)
    finally:
        adapter.close()


def _shown(value: Any) -> str:
    return ", ".join(value) if isinstance(value, tuple) else str(value)


def main(argv: list[str] | None = None) -> int:
    """Entry point: one place maps exceptions to exit codes and one-line messages."""
    command = typer.main.get_command(app)
    error = _print_error
    try:
        result = command.main(args=argv, prog_name="qtctl", standalone_mode=False)
    except (typer.Abort, KeyboardInterrupt):
        error("interrupted")
        return 130
    except QtctlError as exc:
        error(str(exc))
        return exc.exit_code
    except UsageFailure as exc:
        # Typer's (vendored click's) usage errors: unknown command or option, bad value.
        lines = exc.format_message().splitlines() or ["invalid usage"]
        error(f"{lines[0]} (see qtctl --help)")
        return 2
    except Exception as exc:
        logging.getLogger("qtctl").debug("internal error", exc_info=True)
        error(f"internal error: {type(exc).__name__}: {exc} (run with -vv)")
        return 3
    return result if isinstance(result, int) else 0


def _print_error(message: str) -> None:
    from qtctl.output import Output

    Output(color=False).error(message)
