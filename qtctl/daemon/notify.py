"""sd_notify(3) without libsystemd: one datagram to $NOTIFY_SOCKET; a no-op outside systemd."""

from __future__ import annotations

import os
import socket


class Notifier:
    """Talks to the service manager that started us (Type=notify), if any."""

    def __init__(self, address: str | None = None) -> None:
        address = os.environ.get("NOTIFY_SOCKET", "") if address is None else address
        if address.startswith("@"):  # abstract namespace
            address = "\0" + address[1:]
        self.address = address
        self._sock: socket.socket | None = None

    @property
    def enabled(self) -> bool:
        """Whether a service manager listens."""
        return bool(self.address)

    def send(self, **fields: str | int) -> bool:
        """Send `KEY=value` lines (READY=1, STATUS=..., WATCHDOG=1, STOPPING=1)."""
        if not self.address:
            return False
        if self._sock is None:
            self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        payload = "\n".join(f"{key}={value}" for key, value in fields.items())
        try:
            self._sock.sendto(payload.encode("utf-8", "replace"), self.address)
        except OSError:
            return False  # the manager went away: nothing a daemon can do about it
        return True

    def close(self) -> None:
        """Close the socket."""
        if self._sock is not None:
            self._sock.close()
            self._sock = None


def watchdog_interval() -> float:
    """Half the watchdog timeout systemd asked for (WATCHDOG_USEC), or 0 when none."""
    usec = os.environ.get("WATCHDOG_USEC", "")
    pid = os.environ.get("WATCHDOG_PID", "")
    if not usec.isdigit() or (pid and pid != str(os.getpid())):
        return 0.0
    return int(usec) / 2e6
