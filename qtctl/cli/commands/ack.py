"""`qtctl ack`: acknowledge a known finding (a reason, an expiry), list or remove acks."""

from __future__ import annotations

from typing import Annotated

import typer

from qtctl.cli.context import global_options
from qtctl.cli.options import CommandConfigOpt, FormatOpt

CodeArg = Annotated[str | None, typer.Argument(help="The finding's code, such as QT104.")]
SubjectArg = Annotated[
    str | None,
    typer.Argument(help="Its subject (unit, stream, file); a glob such as 'quantum-*' too."),
]
ReasonOpt = Annotated[
    str | None, typer.Option("--reason", envvar="QTCTL_ACK_REASON", help="Why it is accepted.")
]
ForOpt = Annotated[
    str | None,
    typer.Option("--for", envvar="QTCTL_ACK_FOR", help="Expire after this long: 24h, 30m, 7d."),
]
UntilOpt = Annotated[
    str | None,
    typer.Option("--until", envvar="QTCTL_ACK_UNTIL", help="Expire at this UTC date/time."),
]
ListOpt = Annotated[bool, typer.Option("--list", help="List the acknowledgements.")]
RemoveOpt = Annotated[
    bool, typer.Option("--remove", help="Remove the acknowledgement of CODE SUBJECT.")
]


def ack(
    ctx: typer.Context,
    code: CodeArg = None,
    subject: SubjectArg = None,
    reason: ReasonOpt = None,
    for_: ForOpt = None,
    until: UntilOpt = None,
    list_: ListOpt = False,
    remove: RemoveOpt = False,
    fmt: FormatOpt = None,
    config: CommandConfigOpt = None,
) -> None:
    """Acknowledge a finding: still listed by doctor, but it no longer fails it until it expires."""
    from qtctl.acks import AckStore, add_ack, describe, remove_ack
    from qtctl.errors import UsageError

    opts = global_options(ctx)
    out = opts.output(fmt)
    store = AckStore(opts.config_for(config).fix.state_dir)
    if list_:
        acks = store.load()
        if out.format == "json":
            out.json({"schema": "qtctl.acks/1", "acks": [a.as_dict() for a in acks]})
        for line in [] if out.format == "json" else [describe(a) for a in acks] or ["no acks"]:
            out.line(line)
        return
    if not code or not subject:
        raise UsageError("name the finding: qtctl ack CODE SUBJECT --reason TEXT")
    if remove:
        count = remove_ack(store, code.upper(), subject)
        out.note(f"removed {count} acknowledgement(s) of {code.upper()} {subject}")
        return
    out.note(f"acknowledged: {describe(add_ack(store, code, subject, reason, for_, until))}")
