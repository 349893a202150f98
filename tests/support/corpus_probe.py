"""Run inside a sandbox: how the box's systemd and qtctl each read the corpus units (JSON out).

`python -m tests.support.corpus_probe NAMES.json` loads every unit over D-Bus (LoadUnit, then its
properties) and reads the same files with qtctl's parsers, printing one JSON object per unit.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

from qtctl.adapters.systemd import SystemdAdapter
from qtctl.config import SystemdSettings
from qtctl.diagnosis.specifiers import Specifiers
from qtctl.diagnosis.unit_file import UnitFile, drop_in_paths, parse
from qtctl.diagnosis.unit_lint import Problem, UnitView, lint
from qtctl.diagnosis.unit_load import DEPENDENCY_KEYS, LoadedUnit
from qtctl.diagnosis.unit_refusal import service_type

SERVICE = {
    "ExecStart": b"a(sasbttttuii)",
    "WorkingDirectory": b"s",
    "User": b"s",
    "Group": b"s",
    "Environment": b"as",
    "EnvironmentFiles": b"a(sb)",
    "Type": b"s",
    "Restart": b"s",
    "ProtectHome": b"s",
    "DynamicUser": b"b",
    "RemainAfterExit": b"b",
    "MemoryMax": b"t",
    "MemoryHigh": b"t",
    "MemoryLimit": b"t",
    "CPUQuotaPerSecUSec": b"t",
}
DEPENDENCIES = ("Requires", "Requisite", "Wants", "BindsTo", "PartOf", "Before", "After")
INFINITY = 2**64 - 1


def text(value: Any) -> Any:
    """pystemd's bytes (also nested) as str."""
    if isinstance(value, bytes):
        return value.decode("utf-8", "surrogateescape")
    if isinstance(value, list | tuple):
        return [text(v) for v in value]
    return value


def systemd_view(adapter: SystemdAdapter, name: str) -> dict[str, Any]:
    """What the box's PID 1 made of the unit."""
    path = adapter.manager_call(b"LoadUnit", b"s", name.encode())

    def get(iface: str, prop: str, signature: bytes) -> Any:
        return text(
            adapter.bus.get_property(
                b"org.freedesktop.systemd1",
                path,
                f"org.freedesktop.systemd1.{iface}".encode(),
                prop.encode(),
                signature,
            )
        )

    found: dict[str, Any] = {
        "LoadState": get("Unit", "LoadState", b"s"),
        "LoadError": get("Unit", "LoadError", b"(ss)"),
    }
    if found["LoadState"] != "loaded":
        return found
    found.update({key: get("Unit", key, b"as") for key in DEPENDENCIES})
    if name.endswith(".service"):
        found.update({key: get("Service", key, sig) for key, sig in SERVICE.items()})
        found["ExecStart"] = [[c[0], c[1]] for c in found["ExecStart"]]
        found["EnvironmentFiles"] = [[p, bool(o)] for p, o in found["EnvironmentFiles"]]
    return found


def qtctl_view(name: str, fragment: str) -> dict[str, Any]:
    """What qtctl makes of the same files."""
    files = tuple(parse(p) for p in [fragment, *drop_in_paths(name)])
    unit = LoadedUnit(name, files, Specifiers(name, fragment))
    refusal = unit.refusal
    claims = [
        {"kind": p.kind, "where": p.where, "text": p.text, "shown": _shown(name, p, files)}
        for p in lint(UnitView(name, files, (), frozenset(), {}, fragment))
        if p.where
    ]
    found: dict[str, Any] = {
        "refused": [refusal.state, refusal.reason, refusal.where] if refusal else None,
        "claims": claims,
        "files": [f.path for f in files],
    }
    found.update({key: [n for n, _ in unit.dependencies(key)] for key in DEPENDENCIES})
    if name.endswith(".service"):
        found["ExecStart"] = [[c.path, list(c.argv)] for c in unit.commands()]
        found["WorkingDirectory"] = unit.value("WorkingDirectory")
        found["User"] = unit.value("User")
        found["Group"] = unit.value("Group")
        found["Environment"] = [f"{k}={v}" for k, v in unit.environment().items()]
        found["EnvironmentFiles"] = [[p, o] for p, o, _ in unit.environment_files()]
        for key in ("Restart", "ProtectHome", "DynamicUser", "RemainAfterExit"):
            found[key] = unit.value(key)
        found["Type"] = service_type(unit)
        for key in ("MemoryMax", "MemoryHigh", "MemoryLimit", "CPUQuota"):
            found[key] = unit.value(key)
    assert set(DEPENDENCIES) <= DEPENDENCY_KEYS
    return found


def _shown(name: str, problem: Problem, files: tuple[UnitFile, ...]) -> str:
    """What systemd shows for the setting an inline-comment claim is about (`systemctl show
    -P KEY`): the claim is that it keeps the comment as part of the value."""
    if problem.kind != "inline-comment":
        return ""
    path, _, line = problem.where.rpartition(":")
    for unit_file in files:
        for d in unit_file.directives:
            if d.path == path and str(d.line) == line:
                res = subprocess.run(
                    ["systemctl", "show", "-P", d.key, name], capture_output=True, text=True
                )
                return res.stdout.strip()
    return ""


def main() -> None:
    """Read {name: fragment} from the file named on the command line; print both views."""
    with open(sys.argv[1]) as handle:
        units: dict[str, str] = json.load(handle)
    adapter = SystemdAdapter.connect(SystemdSettings())
    out = {}
    for name, fragment in units.items():
        out[name] = {"systemd": systemd_view(adapter, name), "qtctl": qtctl_view(name, fragment)}
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
