"""The main loop every shipped daemon runs under: the same under systemd and in a terminal.

A daemon is an object with `setup()`, `step()`, `status()`, `reload(config)` and `close()`.
The runner owns everything around it:
- SIGTERM/SIGINT: finish the current step, close, exit 0; a stop that overruns `stop_timeout`
  exits 1 so systemd does not wait for its own timeout.
- SIGHUP: reload the config; an invalid new config is logged and the old one kept.
- sd_notify: READY=1 after setup, WATCHDOG=1 from the main loop, STATUS=<summary>, STOPPING=1.
- Transient errors (Redis down, timing out, or refusing writes at maxmemory) are retried with
  capped exponential backoff and one clear log line per attempt; anything else is logged with
  its traceback and exits 1, so that systemd's Restart=on-failure restarts the daemon.
"""

from __future__ import annotations

import logging
import os
import random
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from qtctl.config import Config
from qtctl.daemon.notify import Notifier, watchdog_interval
from qtctl.errors import AdapterUnavailable, QtctlError

log = logging.getLogger("qtctl.daemon")
EXIT_OK, EXIT_FAILED = 0, 1
STOPPED = object()  # what a retried call returns when a stop came during its backoff


class Daemon(Protocol):
    """What a shipped daemon implements; each method returns within about a second."""

    def setup(self) -> None:
        """Connect and validate; raise a transient error to be retried."""

    def step(self) -> bool:
        """One bounded unit of work; True when more work is waiting right now."""

    def status(self) -> str:
        """A one-line summary for STATUS= and logs."""

    def reload(self, config: Config) -> None:
        """Adopt a new config (SIGHUP)."""

    def close(self) -> None:
        """Release connections; called once on the way out."""


class FatalDaemonError(QtctlError):
    """The daemon cannot go on as configured (bad route, wrong key type): exit 1, loudly."""


@dataclass
class Backoff:
    """Capped exponential backoff with +-10 % jitter: 0.5, 1, 2, 4 ... `cap` seconds."""

    base: float = 0.5
    cap: float = 30.0
    attempt: int = 0

    def next_delay(self) -> float:
        """The next wait, growing until `cap`."""
        self.attempt += 1
        delay = min(self.cap, self.base * 2 ** (self.attempt - 1))
        return float(delay * random.uniform(0.9, 1.1))

    def reset(self) -> None:
        """Back to the first delay after a success."""
        self.attempt = 0


def is_transient(exc: BaseException) -> bool:
    """Errors worth waiting out: Redis unreachable, timing out, loading, read-only, or out of
    memory (`maxmemory` reached: writes are refused until readers trim or an operator acts, and
    a crash loop would not help)."""
    try:
        from redis import exceptions as errors
    except ImportError:  # pragma: no cover - redis is a hard dependency
        return isinstance(exc, AdapterUnavailable)

    waits = (
        AdapterUnavailable,
        errors.ConnectionError,  # BusyLoadingError (LOADING) included
        errors.TimeoutError,
        errors.ReadOnlyError,
        errors.OutOfMemoryError,
        errors.MasterDownError,
        errors.TryAgainError,
    )
    if isinstance(exc, waits):
        return True
    # redis-py names those and strips the code; a raw reply (qtctl.adapters.resp) keeps it.
    return isinstance(exc, errors.ResponseError) and str(exc).startswith(TRANSIENT_CODES)


TRANSIENT_CODES = ("LOADING", "BUSY ", "MASTERDOWN", "READONLY", "TRYAGAIN", "OOM")


@dataclass
class Runner:
    """Runs one daemon until it is told to stop or fails for good."""

    name: str
    factory: Callable[[Config], Daemon]
    load_config: Callable[[], Config]
    notifier: Notifier = field(default_factory=Notifier)
    stop_timeout: float = 5.0
    backoff: Backoff = field(default_factory=Backoff)
    _stop: threading.Event = field(default_factory=threading.Event)
    _reload: threading.Event = field(default_factory=threading.Event)
    _last_watchdog: float = 0.0
    _last_status: str = ""

    def request_stop(self, *_: Any) -> None:
        """Stop after the current step (signal handler); bounded by `stop_timeout`."""
        if not self._stop.is_set():
            self._stop.set()
            timer = threading.Timer(self.stop_timeout, self._overran)
            timer.daemon = True
            timer.start()

    def request_reload(self, *_: Any) -> None:
        """Reload the config before the next step (signal handler)."""
        self._reload.set()

    def _overran(self) -> None:
        log.error("%s did not stop within %.1f s; exiting", self.name, self.stop_timeout)
        self.notifier.send(STOPPING=1, STATUS="stop timed out")
        os._exit(EXIT_FAILED)

    def install_signals(self) -> None:
        """SIGTERM/SIGINT stop, SIGHUP reloads (main thread only)."""
        signal.signal(signal.SIGTERM, self.request_stop)
        signal.signal(signal.SIGINT, self.request_stop)
        signal.signal(signal.SIGHUP, self.request_reload)

    def run(self, once: bool = False, max_steps: int = 1_000_000) -> int:
        """Set up (retrying transient errors), loop, and stop cleanly; the exit code."""
        config = self.load_config()
        daemon = self.factory(config)
        try:
            if self._retrying("start", daemon.setup) is STOPPED:
                return self._stopped(daemon)
            self.notifier.send(READY=1, STATUS=self._status(daemon, "ready"))
            log.info("%s ready: %s", self.name, daemon.status())
            steps = 0
            while not self._stop.is_set():
                if self._reload.is_set():
                    self._do_reload(daemon)
                more = self._retrying("work", daemon.step) is True
                self._heartbeat(daemon)
                steps += 1
                if once and (not more or steps >= max_steps):
                    break
            return self._stopped(daemon)
        except FatalDaemonError as exc:
            log.error("%s cannot continue: %s", self.name, exc)
            return self._failed(daemon, str(exc))
        except Exception as exc:
            log.exception("%s failed: %s: %s", self.name, type(exc).__name__, exc)
            return self._failed(daemon, f"{type(exc).__name__}: {exc}")

    def _retrying(self, what: str, call: Callable[[], Any]) -> Any:
        """Call until it succeeds or a stop is requested; transient errors back off."""
        while True:
            try:
                result = call()
            except Exception as exc:
                if not is_transient(exc):
                    raise
                delay = self.backoff.next_delay()
                reason = getattr(exc, "reason", None) or str(exc) or type(exc).__name__
                if type(exc).__name__.endswith(("OutOfMemoryError", "ReadOnlyError")):
                    reason = f"{type(exc).__name__}: {reason}"  # the code redis-py stripped
                log.warning(
                    "%s: Redis unavailable during %s (%s); retrying in %.1f s (attempt %d)",
                    self.name,
                    what,
                    reason,
                    delay,
                    self.backoff.attempt,
                )
                self.notifier.send(STATUS=f"waiting for Redis: {reason}")
                if self._wait(delay):
                    return STOPPED
                continue
            if self.backoff.attempt:
                log.info("%s: Redis back after %d attempt(s)", self.name, self.backoff.attempt)
                self.backoff.reset()
            return result

    def _wait(self, seconds: float) -> bool:
        """Sleep, feeding the watchdog; True if a stop was requested meanwhile."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self._stop.wait(min(0.5, max(0.0, deadline - time.monotonic()))):
                return True
            self._feed_watchdog()
        return self._stop.is_set()

    def _heartbeat(self, daemon: Daemon) -> None:
        self._feed_watchdog()
        status = daemon.status()
        if status != self._last_status:
            self.notifier.send(STATUS=status)
            self._last_status = status

    def _feed_watchdog(self) -> None:
        interval = watchdog_interval()
        now = time.monotonic()
        if interval and now - self._last_watchdog >= interval / 2:
            self.notifier.send(WATCHDOG=1)
            self._last_watchdog = now

    def _do_reload(self, daemon: Daemon) -> None:
        self._reload.clear()
        try:
            config = self.load_config()
        except QtctlError as exc:
            log.error("%s: reload refused, keeping the running config: %s", self.name, exc)
            return
        self.notifier.send(RELOADING=1, MONOTONIC_USEC=time.monotonic_ns() // 1000)
        daemon.reload(config)
        log.info("%s: config reloaded", self.name)
        self.notifier.send(READY=1, STATUS=daemon.status())

    def _status(self, daemon: Daemon, fallback: str) -> str:
        try:
            return daemon.status()
        except Exception:
            return fallback

    def _stopped(self, daemon: Daemon) -> int:
        self.notifier.send(STOPPING=1, STATUS="stopping")
        log.info("%s stopping: %s", self.name, self._status(daemon, "stopping"))
        daemon.close()
        return EXIT_OK

    def _failed(self, daemon: Daemon, reason: str) -> int:
        self.notifier.send(STOPPING=1, STATUS=f"failed: {reason}"[:200])
        try:
            daemon.close()
        except Exception:
            log.debug("close after failure failed", exc_info=True)
        return EXIT_FAILED
