"""The `qtctl` root: global options, one registration line per command, one exit-code mapping."""

from __future__ import annotations

import logging
import sys
from typing import Annotated

import typer

try:  # typer >= 0.26 vendors click; older typer (the pinned one) uses click itself
    from typer import TyperException as UsageFailure  # type: ignore[attr-defined]
except ImportError:
    from click import ClickException as UsageFailure

from qtctl import __version__
from qtctl.cli.commands.ack import ack
from qtctl.cli.commands.config import config_app
from qtctl.cli.commands.demo import demo
from qtctl.cli.commands.doctor import doctor
from qtctl.cli.commands.explain import explain
from qtctl.cli.commands.fix import fix
from qtctl.cli.commands.fleet import fleet
from qtctl.cli.commands.install import install
from qtctl.cli.commands.lint import lint
from qtctl.cli.commands.report import report
from qtctl.cli.commands.risk import risk_app
from qtctl.cli.commands.rl import rl_app
from qtctl.cli.commands.run import run
from qtctl.cli.commands.streams import streams_app
from qtctl.cli.commands.uninstall import uninstall
from qtctl.cli.context import GlobalOptions, print_error
from qtctl.cli.options import ConfigOpt, FormatOpt
from qtctl.errors import QtctlError
from qtctl.redaction import LogRedaction

app = typer.Typer(
    name="qtctl",
    help="Operator toolkit for Python trading fleets on systemd and Redis Streams.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
app.add_typer(config_app, name="config")
app.add_typer(streams_app, name="streams")
app.add_typer(rl_app, name="rl")
app.add_typer(risk_app, name="risk")
app.command()(doctor)
app.command()(fix)
app.command()(explain)
app.command()(run)
app.command()(install)
app.command()(demo)
app.command()(uninstall)
app.command()(report)
app.command()(lint)
app.command()(ack)
app.command()(fleet)

NoColorOpt = Annotated[
    bool, typer.Option("--no-color", envvar="QTCTL_NO_COLOR", help="No colors (also NO_COLOR).")
]
VerboseOpt = Annotated[
    int,
    typer.Option(
        "-v",
        "--verbose",
        count=True,
        envvar="QTCTL_VERBOSE",
        help="More detail; -vv for debug logs.",
    ),
]
QuietOpt = Annotated[
    bool, typer.Option("-q", "--quiet", envvar="QTCTL_QUIET", help="Only results and errors.")
]


def _version(value: bool) -> None:
    if value:
        typer.echo(f"qtctl {__version__}")
        raise typer.Exit(0)


VersionOpt = Annotated[
    bool | None,
    typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
]


@app.callback()
def _root(
    ctx: typer.Context,
    config: ConfigOpt = None,
    fmt: FormatOpt = None,
    no_color: NoColorOpt = False,
    verbose: VerboseOpt = 0,
    quiet: QuietOpt = False,
    version: VersionOpt = None,
) -> None:
    """Operator toolkit for Python trading fleets on systemd and Redis Streams."""
    verbosity = -1 if quiet else verbose
    ctx.obj = GlobalOptions(config, fmt or "table", not no_color, verbosity)
    level = {-1: logging.WARNING, 0: logging.WARNING, 1: logging.INFO}.get(verbosity, logging.DEBUG)
    logging.basicConfig(
        level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    for handler in logging.getLogger().handlers:  # log lines quote errors: mask secrets there
        if not any(isinstance(f, LogRedaction) for f in handler.filters):
            handler.addFilter(LogRedaction())


def main(argv: list[str] | None = None) -> int:
    """Entry point: one place maps exceptions to exit codes and one-line messages."""
    command = typer.main.get_command(app)
    error = print_error
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
