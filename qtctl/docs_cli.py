"""The CLI reference page, generated from the typer app: every command and option with its help."""

from __future__ import annotations

from collections.abc import Iterator

import click

from qtctl.docs_text import GENERATED, cell, code, prose


def commands() -> Iterator[tuple[str, click.Command]]:
    """(`qtctl sub command`, command) for the root and every command under it, depth first."""
    import typer

    from qtctl.cli.app import app

    def walk(command: click.Command, path: str) -> Iterator[tuple[str, click.Command]]:
        yield path, command
        if isinstance(command, click.Group):
            for name in sorted(command.commands):
                yield from walk(command.commands[name], f"{path} {name}")

    yield from walk(typer.main.get_command(app), "qtctl")


def option_names(param: click.Parameter) -> list[str]:
    """The spellings of an option (`--format`, `-f`; a flag's `--no-x` too); none for arguments."""
    if not isinstance(param, click.Option):
        return []
    return [*param.opts, *param.secondary_opts]


def cli_page() -> str:
    """One section per command: its help, usage, arguments and an options table."""
    lines = [
        "# CLI reference",
        "",
        GENERATED,
        "Every command and option of `qtctl`, generated from the CLI itself",
        "(`qtctl COMMAND --help` prints the same help). Global options go before the command.",
        "Every option with an environment variable reads it when the option is not given. What",
        "each command does in depth: [Commands](../commands.md).",
    ]
    for path, command in commands():
        lines += ["", f"## {path}", "", f"```\n{_usage(path, command)}\n```", ""]
        if command.help:
            lines += [prose(_first_paragraph(command.help)), ""]
        if isinstance(command, click.Group):
            subs = ", ".join(f"`{path} {name}`" for name in sorted(command.commands))
            lines += [f"Commands: {subs}.", ""]
        lines += _parameters(command)
    return "\n".join(lines).rstrip("\n") + "\n"


def _usage(path: str, command: click.Command) -> str:
    arguments = [_argument(p) for p in command.params if isinstance(p, click.Argument)]
    rest = " COMMAND [ARGS]..." if isinstance(command, click.Group) else ""
    return " ".join([path, "[OPTIONS]", *arguments]) + rest


def _argument(param: click.Argument) -> str:
    name = (param.name or "arg").upper()
    name += "..." if param.nargs == -1 else ""
    return name if param.required else f"[{name}]"


def _parameters(command: click.Command) -> list[str]:
    rows = [_option_row(p) for p in command.params if option_names(p)]
    if not rows:
        return []
    return ["| option | environment | default | help |", "|---|---|---|---|", *rows]


def _option_row(param: click.Parameter) -> str:
    help_text = cell(getattr(param, "help", None) or "")
    return f"| {_names(param)} | {_envvar(param)} | {_shown_default(param)} | {help_text} |"


def _names(param: click.Parameter) -> str:
    spelled = ", ".join(code(name) for name in option_names(param))
    if isinstance(param, click.Option) and not param.is_flag and not param.count:
        spelled += f" {code(param.metavar or _metavar(param))}"
    return spelled


def _metavar(param: click.Option) -> str:
    if isinstance(param.type, click.Choice):
        return "|".join(str(choice) for choice in param.type.choices)
    return (param.type.name or "value").upper()


def _envvar(param: click.Parameter) -> str:
    names = [param.envvar] if isinstance(param.envvar, str) else list(param.envvar or ())
    return ", ".join(code(name) for name in names)


def _shown_default(param: click.Parameter) -> str:
    value = param.default
    if value is None or value is False or callable(value) or getattr(param, "count", False):
        return ""
    if isinstance(value, tuple | list):
        return code(",".join(str(v) for v in value)) if value else ""
    return code(str(value))


def _first_paragraph(text: str) -> str:
    return text.strip().split("\n\n", 1)[0]
