"""The one exception tree of qtctl; the CLI maps each branch to an exit code in one place."""

from __future__ import annotations


class QtctlError(Exception):
    """Base of every error qtctl raises on purpose."""

    exit_code = 3


class UsageError(QtctlError):
    """The user asked for something that cannot be done as asked."""

    exit_code = 2


class ConfigError(UsageError):
    """A configuration value is missing, unreadable or invalid."""

    def __init__(self, message: str, key: str | None = None) -> None:
        super().__init__(f"{key}: {message}" if key else message)
        self.key = key


class AdapterUnavailable(QtctlError):
    """A backend (systemd, Redis) cannot be reached; checks that need it are skipped."""

    def __init__(self, backend: str, reason: str) -> None:
        super().__init__(f"{backend} unavailable: {reason}")
        self.backend = backend
        self.reason = reason


class SandboxError(QtctlError):
    """The systemd sandbox could not be booted or driven."""
