"""The load-time checks after parsing that make systemd 252 refuse a unit (load state
bad-setting): service_verify() in src/core/service.c and its kin for timers, paths, sockets,
mounts, automounts and swaps."""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING

from qtctl.diagnosis.specifiers import (
    PATH_MAX,
    SpecifierError,
    name_from_path,
    path_unescape,
    prefix,
)
from qtctl.diagnosis.unit_times import calendar, time_span

if TYPE_CHECKING:
    from qtctl.diagnosis.unit_load import LoadedUnit

TIMER_SPANS = ("OnActiveSec", "OnBootSec", "OnStartupSec", "OnUnitActiveSec", "OnUnitInactiveSec")
PATH_KEYS = ("PathExists", "PathExistsGlob", "PathChanged", "PathModified", "DirectoryNotEmpty")
LISTEN_KEYS = frozenset(
    {"ListenStream", "ListenDatagram", "ListenSequentialPacket", "ListenFIFO", "ListenNetlink"}
    | {"ListenSpecial", "ListenMessageQueue", "ListenUSBFunction"}
)
API_MOUNTS = frozenset({"/proc", "/sys", "/dev", "/run", "/dev/shm", "/dev/pts", "/sys/fs/cgroup"})
NO_START = "Service has no ExecStart=, ExecStop=, or SuccessAction=. Refusing."
ONESHOT_ONLY = "which is only allowed for Type=oneshot services. Refusing."
NOT_ONESHOT = "which isn't allowed for Type=oneshot services. Refusing."
SERVICE_RULES = {
    "no-start": NO_START,
    "no-exec-start": f"Service has no ExecStart= setting, {ONESHOT_ONLY}",
    "not-remaining": "Service has no ExecStart= and no SuccessAction= settings and does not "
    "have RemainAfterExit=yes set. Refusing.",
    "two-starts": f"Service has more than one ExecStart= setting, {ONESHOT_ONLY}",
    "oneshot-restart": f"Service has Restart= set to either always or on-success, {NOT_ONESHOT}",
    "oneshot-force": f"Service has RestartForceExitStatus= set, {NOT_ONESHOT}",
    "oneshot-cgroup": f"Service has ExitType=cgroup set, {NOT_ONESHOT}",
    "dbus-name": "Service is of type D-Bus but no D-Bus service name has been specified. Refusing.",
    "pam": "Service has PAM enabled. Kill mode must be set to 'control-group' or 'mixed'. "
    "Refusing.",
}


def refusal(unit: LoadedUnit) -> str:
    """systemd's reason for refusing the unit after reading it, or ''."""
    kind = unit.name.rpartition(".")[2]
    check = {
        "service": _service,
        "timer": _timer,
        "path": _path,
        "socket": _socket,
        "mount": _mount,
        "automount": _automount,
        "swap": _swap,
    }.get(kind)
    return check(unit) if check else ""


def service_type(unit: LoadedUnit) -> str:
    """Type=, or the one systemd picks: dbus with a BusName=, simple with an ExecStart=, else
    oneshot (service_add_extras)."""
    if unit.value("Type"):
        return unit.value("Type")
    return "dbus" if unit.value("BusName") else "simple" if unit.commands() else "oneshot"


def _service(unit: LoadedUnit) -> str:
    start, stop = unit.commands("ExecStart"), unit.commands("ExecStop")
    kind = service_type(unit)
    action = unit.value("SuccessAction", "Unit") not in ("", "none")
    broken = {
        "no-start": not start and not stop and not action,
        "no-exec-start": kind != "oneshot" and not start,
        "not-remaining": unit.value("RemainAfterExit") != "yes" and not start and not action,
        "two-starts": kind != "oneshot" and len(start) > 1,
        "oneshot-restart": kind == "oneshot" and unit.value("Restart") in ("always", "on-success"),
        "oneshot-force": kind == "oneshot" and bool(unit.value("RestartForceExitStatus")),
        "oneshot-cgroup": kind == "oneshot" and unit.value("ExitType") == "cgroup",
        "dbus-name": kind == "dbus" and not unit.value("BusName"),
        "pam": bool(unit.value("PAMName"))
        and unit.value("KillMode") not in ("", "control-group", "mixed"),
    }
    return next((SERVICE_RULES[rule] for rule, hit in broken.items() if hit), "")


def _expanded(unit: LoadedUnit, value: str, limit: int = 1 << 20) -> str:
    try:
        return unit.spec.expand(value, limit=limit)
    except SpecifierError:
        return ""


def _timer(unit: LoadedUnit) -> str:
    values = False
    for d in unit.timer_directives():
        text = _expanded(unit, d.value)
        if not d.value and d.key in (*TIMER_SPANS, "OnCalendar"):
            values = False  # an empty assignment drops every value set so far
        elif text and (time_span(text) if d.key in TIMER_SPANS else calendar(text)):
            values = True
    clock = any(_yes(unit.value(k, "Timer")) for k in ("OnClockChange", "OnTimezoneChange"))
    return "" if values or clock else "Timer unit lacks value setting. Refusing."


def _path(unit: LoadedUnit) -> str:
    if any(unit.value(k, "Path") for k in PATH_KEYS):
        return ""
    return "Path unit lacks path setting. Refusing."


def _socket(unit: LoadedUnit) -> str:
    ports = 0
    for d in unit.directives_in("Socket", LISTEN_KEYS):
        text = _expanded(unit, d.value, PATH_MAX - 1)
        if not d.value:
            ports = 0  # an empty Listen*= drops every port set so far
        elif text and _listen_valid(d.key, text):
            ports += 1
    if ports:
        return ""
    return (
        "Unit has no Listen setting (ListenStream=, ListenDatagram=, ListenFIFO=, ...). Refusing."
    )


def _where(unit: LoadedUnit, key: str, section: str) -> str:
    value = _expanded(unit, unit.value(key, section))
    if value:
        return value
    try:
        return path_unescape(prefix(unit.name))
    except SpecifierError:
        return ""


def _mount(unit: LoadedUnit) -> str:
    where = _where(unit, "Where", "Mount")
    if name_from_path(where, ".mount") != unit.name:
        return "Where= setting doesn't match unit name. Refusing."
    if where in API_MOUNTS:
        return f"Cannot create mount unit for API file system {where}. Refusing."
    if not unit.value("What", "Mount"):
        return "What= setting is missing. Refusing."
    return ""


def _automount(unit: LoadedUnit) -> str:
    where = _where(unit, "Where", "Automount")
    if where == "/":
        return "Cannot have an automount unit for the root directory. Refusing."
    if name_from_path(where, ".automount") != unit.name:
        return "Where= setting doesn't match unit name. Refusing."
    return ""


def _swap(unit: LoadedUnit) -> str:
    if name_from_path(_where(unit, "What", "Swap"), ".swap") != unit.name:
        return "Value of What= and unit name do not match, not loading."
    return ""


def _yes(value: str) -> bool:
    return value.lower() in ("1", "yes", "y", "true", "t", "on")


def _listen_valid(key: str, text: str) -> bool:
    """Whether socket_address_parse() (or the path check) accepts a Listen*= value."""
    if text.startswith(("/", "@")) or key == "ListenNetlink":
        return True
    if key not in ("ListenStream", "ListenDatagram"):
        return False  # SequentialPacket: AF_UNIX only; FIFO, Special, MessageQueue: paths
    if text.startswith("vsock:"):
        cid, _, port = text[6:].partition(":")
        return all(p.isdigit() and int(p) < 2**32 for p in (cid or "0", port))
    host, colon, port = text.rpartition(":")
    number = port if colon else text
    try:
        ipaddress.ip_address(host.strip("[]")) if colon else None
    except ValueError:
        return False
    return number.isdigit() and 0 < int(number) <= 65535
