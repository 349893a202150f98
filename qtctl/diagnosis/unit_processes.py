"""Which processes belong to which unit (by cgroup), and the TCP ports they listen on.

One pass over /proc maps every process to the service cgroup it lives in (MainPID and all its
children, however deep), and one psutil socket table maps listening sockets to processes.
Processes that exit during the scan and /proc entries we may not read are skipped, never fatal.
"""

from __future__ import annotations

import ipaddress
import os
import socket
from collections.abc import Collection
from dataclasses import dataclass

import psutil

from qtctl.diagnosis.fleet import FleetUnit, fleet_units
from qtctl.engine.context import CheckContext


@dataclass(frozen=True)
class Listener:
    """One listening TCP socket of a unit's process."""

    unit: str
    pid: int
    process: str
    address: str
    port: int

    @property
    def wildcard(self) -> bool:
        """Bound to every interface (0.0.0.0 or ::)."""
        return self.address in ("0.0.0.0", "::", "")

    @property
    def loopback(self) -> bool:
        """Reachable only from this host."""
        try:
            address = ipaddress.ip_address(self.address.split("%")[0])
        except ValueError:
            return False
        mapped = getattr(address, "ipv4_mapped", None)
        return bool((mapped or address).is_loopback)

    @property
    def probe_host(self) -> str:
        """Where a local client reaches it: loopback for wildcards, the address otherwise."""
        if self.address in ("0.0.0.0", ""):
            return "127.0.0.1"
        if self.address == "::":
            return "::1"
        return self.address

    @property
    def endpoint(self) -> str:
        """host:port as a URL writes it."""
        host = f"[{self.address}]" if ":" in self.address else (self.address or "0.0.0.0")
        return f"{host}:{self.port}"


def unit_pids(units: Collection[str], proc: str = "/proc") -> dict[str, list[int]]:
    """pid lists of the given units, from each process's cgroup (v1 name=systemd or v2)."""
    wanted = set(units)
    found: dict[str, list[int]] = {}
    try:
        entries = os.scandir(proc)
    except OSError:
        return found
    with entries:
        for entry in entries:
            if not entry.name.isdigit():
                continue
            unit = _unit_of(f"{proc}/{entry.name}/cgroup")
            if unit in wanted:
                found.setdefault(unit, []).append(int(entry.name))
    return found


def _unit_of(path: str) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            lines = handle.read().splitlines()
    except OSError:  # exited meanwhile, or hidden from us
        return ""
    chosen = ""
    for line in lines:
        _, controllers, cgroup = line.split(":", 2) if line.count(":") >= 2 else ("", "", "")
        if controllers in ("name=systemd", "") and cgroup:
            chosen = cgroup
            if controllers == "name=systemd":
                break
    return next((part for part in chosen.split("/") if part.endswith(".service")), "")


def process_name(pid: int, proc: str = "/proc") -> str:
    """The process's comm, or '' once it is gone."""
    try:
        with open(f"{proc}/{pid}/comm", encoding="utf-8", errors="replace") as handle:
            return handle.read().strip()
    except OSError:
        return ""


def listeners(pids_by_unit: dict[str, list[int]]) -> list[Listener]:
    """Every listening TCP socket (IPv4 and IPv6) of the given processes."""
    owner = {pid: unit for unit, pids in pids_by_unit.items() for pid in pids}
    found: set[Listener] = set()
    for pid, laddr in _listening(set(owner)):
        unit = owner.get(pid)
        if unit:
            found.add(Listener(unit, pid, process_name(pid), laddr[0], laddr[1]))
    return sorted(found, key=lambda x: (x.unit, x.port, x.address, x.pid))


def _listening(pids: set[int]) -> list[tuple[int, tuple[str, int]]]:
    """(pid, (address, port)) of LISTEN sockets: one table as root, per process otherwise."""
    try:
        table = psutil.net_connections(kind="tcp")
    except psutil.AccessDenied:
        return _per_process(pids)
    return [
        (c.pid, (c.laddr.ip, c.laddr.port))
        for c in table
        if c.status == psutil.CONN_LISTEN and c.pid in pids and c.laddr
    ]


def _per_process(pids: set[int]) -> list[tuple[int, tuple[str, int]]]:
    rows = []
    for pid in pids:
        try:
            conns = psutil.Process(pid).net_connections(kind="tcp")
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
        rows += [(pid, (c.laddr.ip, c.laddr.port)) for c in conns if c.status == "LISTEN"]
    return rows


def family(address: str) -> socket.AddressFamily:
    """AF_INET6 for an IPv6 literal, else AF_INET."""
    return socket.AF_INET6 if ":" in address else socket.AF_INET


def discover(ctx: CheckContext) -> Discovery:
    """Active fleet units with their processes and listeners (memoized per run)."""
    return ctx.memo("unit_processes", lambda: _discover(ctx))  # type: ignore[no-any-return]


@dataclass(frozen=True)
class Discovery:
    """The fleet's running processes and listening sockets, by unit."""

    units: tuple[FleetUnit, ...]
    pids: dict[str, list[int]]
    listeners: tuple[Listener, ...]
    hidden: int = 0  # processes whose sockets we may not see (/proc/PID/fd unreadable)


def _discover(ctx: CheckContext) -> Discovery:
    active = tuple(u for u in fleet_units(ctx) if u.active_state in ("active", "reloading"))
    pids = unit_pids({u.name for u in active})
    hidden = sum(1 for group in pids.values() for pid in group if not _fds_readable(pid))
    return Discovery(active, pids, tuple(listeners(pids)), hidden)


def _fds_readable(pid: int) -> bool:
    return os.access(f"/proc/{pid}/fd", os.R_OK | os.X_OK) or not os.path.exists(f"/proc/{pid}")
