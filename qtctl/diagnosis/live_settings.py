"""Unit-file settings systemd applies to a running unit at daemon-reload, without a restart:
the cgroup resource-control keys (systemd.resource-control(5)). A unit file or drop-in that sets
nothing else changes nothing a restart would bring in, so it does not make the unit's code stale
(QT107); any other setting (ExecStart=, Environment=, User=, ...) needs a restart to apply."""

from __future__ import annotations

from qtctl.adapters import safe_walk
from qtctl.diagnosis.unit_file import parse_bytes

MAX_UNIT_FILE = 2**20  # systemd refuses longer lines anyway; a bigger file is not judged

LIVE_RESOURCE_KEYS = frozenset(
    [
        "CPUAccounting",
        "CPUWeight",
        "StartupCPUWeight",
        "CPUShares",
        "StartupCPUShares",
        "CPUQuota",
        "CPUQuotaPeriodSec",
        "AllowedCPUs",
        "StartupAllowedCPUs",
        "AllowedMemoryNodes",
        "StartupAllowedMemoryNodes",
        "MemoryAccounting",
        "MemoryMin",
        "MemoryLow",
        "MemoryHigh",
        "MemoryMax",
        "MemorySwapMax",
        "MemoryLimit",
        "TasksAccounting",
        "TasksMax",
        "IOAccounting",
        "IOWeight",
        "StartupIOWeight",
        "IODeviceWeight",
        "IOReadBandwidthMax",
        "IOWriteBandwidthMax",
        "IOReadIOPSMax",
        "IOWriteIOPSMax",
        "IODeviceLatencyTargetSec",
        "BlockIOAccounting",
        "BlockIOWeight",
        "StartupBlockIOWeight",
        "BlockIODeviceWeight",
        "BlockIOReadBandwidth",
        "BlockIOWriteBandwidth",
        "DeviceAllow",
        "DevicePolicy",
        "IPAccounting",
        "IPAddressAllow",
        "IPAddressDeny",
        "ManagedOOMSwap",
        "ManagedOOMMemoryPressure",
        "ManagedOOMMemoryPressureLimit",
        "ManagedOOMPreference",
    ]
)
LIVE_SECTIONS = frozenset({"Service", "Slice", "Scope", "Socket", "Mount", "Swap"})


def only_live_settings(path: str) -> bool:
    """Whether the unit file sets at least one thing and only resource-control keys (in a
    section that takes them), which systemd applies to the running unit at daemon-reload."""
    data = safe_walk.read_head(path, MAX_UNIT_FILE + 1)  # a FIFO planted there must not hang
    if not data or len(data) > MAX_UNIT_FILE:
        return False
    directives = parse_bytes(data, path).directives
    return bool(directives) and all(
        d.key in LIVE_RESOURCE_KEYS and d.section in LIVE_SECTIONS for d in directives
    )
