"""The only module that imports pystemd: systemd's manager and units over D-Bus."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from qtctl.config import SystemdSettings
from qtctl.errors import AdapterUnavailable

BOOTED_MARKER = "/run/systemd/system"


@dataclass(frozen=True)
class UnitRow:
    """One line of ListUnits: what `systemctl list-units` shows."""

    name: str
    description: str
    load_state: str
    active_state: str
    sub_state: str
    object_path: bytes


class SystemdAdapter:
    """A D-Bus connection to systemd (PID 1), or a configured bus address."""

    def __init__(self, bus: Any, address: str) -> None:
        self.bus = bus
        self.address = address

    @classmethod
    def connect(cls, settings: SystemdSettings) -> SystemdAdapter:
        """Connect to systemd's bus, or raise AdapterUnavailable saying why not."""
        if not settings.bus_address and not os.path.isdir(BOOTED_MARKER):
            raise AdapterUnavailable(
                "systemd",
                f"systemd is not running as PID 1 on this machine ({BOOTED_MARKER} is missing)",
            )
        try:
            from pystemd.dbuslib import DBus, DBusAddress
        except ImportError as exc:
            raise AdapterUnavailable("systemd", f"pystemd cannot be imported: {exc}") from None
        address = settings.bus_address or "the system bus"
        try:
            bus = DBusAddress(settings.bus_address.encode()) if settings.bus_address else DBus()
            bus.open()
            adapter = cls(bus, address)
            adapter.manager_property(b"Version", b"s")
        except Exception as exc:
            raise AdapterUnavailable(
                "systemd", f"cannot talk to systemd over {address}: {exc}"
            ) from None
        return adapter

    def manager_property(self, name: bytes, rtype: bytes) -> Any:
        """One property of org.freedesktop.systemd1.Manager."""
        return self.bus.get_property(
            b"org.freedesktop.systemd1",
            b"/org/freedesktop/systemd1",
            b"org.freedesktop.systemd1.Manager",
            name,
            rtype,
        )

    def manager_call(self, method: bytes, signature: bytes = b"", args: Any = None) -> Any:
        """Call a Manager method and return its decoded body."""
        return self.bus.call_method(
            b"org.freedesktop.systemd1",
            b"/org/freedesktop/systemd1",
            b"org.freedesktop.systemd1.Manager",
            method,
            [(signature, args)] if signature else None,
        ).body

    def list_units(self, patterns: list[str]) -> list[UnitRow]:
        """Loaded units whose names match any glob pattern, in one call."""
        raw = self.manager_call(
            b"ListUnitsByPatterns", b"asas", ([], [p.encode() for p in patterns])
        )
        return [UnitRow(_s(r[0]), _s(r[1]), _s(r[2]), _s(r[3]), _s(r[4]), bytes(r[6])) for r in raw]

    def close(self) -> None:
        """Close the bus connection."""
        self.bus.close()


def _s(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
