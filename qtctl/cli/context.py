"""What the root callback hands every command: the global options, its Output and its config."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import typer

from qtctl.errors import UsageError

if TYPE_CHECKING:  # rich and the config machinery load only when a command needs them
    from qtctl.config import Config
    from qtctl.output import Output

FORMATS = ("table", "json", "markdown")

T = TypeVar("T")


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


def global_options(ctx: typer.Context) -> GlobalOptions:
    """The options the root callback stored, from any command or sub-command."""
    opts: GlobalOptions = ctx.find_root().obj
    return opts


def with_redis(cfg: Config, what: str, call: Callable[[Any], T]) -> T:
    """Connect, run `call(client)` under the connection guard, always disconnect."""
    from qtctl.adapters.redis_client import RedisAdapter

    adapter = RedisAdapter.connect(cfg.redis)
    try:
        with adapter.guard(what):
            return call(adapter.client)
    finally:
        adapter.close()


def print_error(message: str) -> None:
    """One uncoloured `qtctl: error: ...` line on stderr."""
    from qtctl.output import Output

    Output(color=False).error(message)
