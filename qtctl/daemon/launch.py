"""`qtctl run DAEMON`: find the daemon, set up logging and signals, run it as its unit does."""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from typing import Any

from qtctl.config import Config
from qtctl.daemon.logs import setup_logging
from qtctl.daemon.runtime import Daemon, Runner
from qtctl.errors import UsageError


def available() -> dict[str, str]:
    """Daemon name -> one-line description."""
    from qtctl.daemons import DAEMONS, DESCRIPTIONS

    return {name: DESCRIPTIONS.get(name, "") for name in DAEMONS}


def factory(name: str) -> Callable[[Config], Daemon]:
    """The daemon's `create(config)`; a clear error for an unknown name."""
    from qtctl.daemons import DAEMONS

    if name not in DAEMONS:
        known = ", ".join(sorted(DAEMONS)) or "none yet"
        raise UsageError(f"unknown daemon {name!r}; known: {known} (qtctl run --list)")
    module, _, attr = DAEMONS[name].partition(":")
    create: Any = getattr(importlib.import_module(module), attr)
    return create  # type: ignore[no-any-return]


def run_daemon(
    name: str,
    load_config: Callable[[], Config],
    once: bool = False,
    log_format: str = "text",
    verbose: bool = False,
) -> int:
    """Run in the foreground until SIGTERM/SIGINT; the exit code for systemd."""
    create = factory(name)
    load_config()  # a bad config is a usage error before anything starts
    setup_logging(log_format, logging.DEBUG if verbose else logging.INFO)
    runner = Runner(name, create, load_config)
    runner.install_signals()
    return runner.run(once=once)
