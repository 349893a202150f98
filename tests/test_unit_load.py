"""What systemd keeps of a unit's settings and when it refuses the unit, on text (fast; each rule
is proven against the real systemd by tests/test_systemd_differential.py and
tests/test_systemd_reading.py)."""

from __future__ import annotations

import pytest

from qtctl.diagnosis.specifiers import Specifiers
from qtctl.diagnosis.unit_file import parse_text
from qtctl.diagnosis.unit_load import LoadedUnit

HOST = {"h": "/root", "u": "root", "H": "box"}


def load(text: str, name: str = "quantum-x.service") -> LoadedUnit:
    path = f"/etc/systemd/system/{name.replace('@b.', '@.')}"
    return LoadedUnit(name, [parse_text(text, path)], Specifiers(name, path, HOST))


@pytest.mark.parametrize(
    ("text", "state", "reason"),
    [
        ("[Service]\nExecStart=/bin/true\n", None, ""),
        ("[Service]\nType=simple\n", "bad-setting", "no ExecStart=, ExecStop="),
        ("[Service]\nExecStart=/a\nExecStart=/b\n", "bad-setting", "more than one ExecStart="),
        ("[Service]\nType=oneshot\nExecStart=/a ; /b\n", None, ""),
        ("[Service]\nExecStart=/a ; /b\n", "bad-setting", "more than one ExecStart="),
        ("[Service]\nExecStart=/bin/echo %z\n", "bad-setting", "unknown specifier %z"),
        ("[Service]\nExecStart=-/bin/echo %z\n", "bad-setting", "no ExecStart="),
        ("[Service]\nExecStart=/bin/true\nUser=a:b\n", "bad-setting", "invalid user"),
        ("[Service]\nExecStart=/bin/true\nDynamicUser=\n", "bad-setting", "boolean"),
        ("[Unit]\nUser=a:b\n[Service]\nExecStart=/bin/true\n", None, ""),  # Unknown key there
        ("[Service\nExecStart=/bin/true\n", "error", "invalid section header"),
        ("[Service]\nExecStart=/bin/true \\xff\n".replace("\\xff", "\udcff"), "error", "UTF-8"),
        ("[Service]\nType=oneshot\nRestart=always\nExecStart=/a\n", "bad-setting", "Restart="),
        ("[Service]\nBusName=org.x\n", "bad-setting", "no ExecStart="),
    ],
)
def test_refusals(text: str, state: str | None, reason: str) -> None:
    refusal = load(text).refusal
    assert (refusal.state if refusal else None) == state
    assert reason in (refusal.reason if refusal else "")


def test_values_come_back_as_systemd_keeps_them() -> None:
    unit = load(
        "[Unit]\nWants=b-%i.service x@.service\n[Service]\nType=bogus\nType=oneshot\nType=\n"
        'ExecStart=/bin/echo "a b" \\; c ; @/bin/sh sh -c x\nEnvironment="A=1 2" B=%h C\n'
        "EnvironmentFile=-/etc/a b\nWorkingDirectory=-/srv//%i/\nUser=%u\nProtectHome=true\n"
        "MemoryMax=16G # note\n",
        "quantum-x@b.service",
    )
    assert [(c.path, c.argv) for c in unit.commands()] == [
        ("/bin/echo", ("/bin/echo", "a b", ";", "c")),
        ("/bin/sh", ("sh", "-c", "x")),
    ]
    assert [n for n, _ in unit.dependencies("Wants")] == ["b-b.service", "x@b.service"]
    assert unit.value("Type") == "oneshot"  # the invalid and the empty one are ignored
    assert unit.environment() == {"A": "1 2", "B": "/root"}  # `C` is no assignment
    assert [(p, o) for p, o, _ in unit.environment_files()] == [("/etc/a b", True)]
    assert unit.value("WorkingDirectory") == "!/srv/b"
    assert (unit.value("User"), unit.value("ProtectHome")) == ("root", "yes")
    assert unit.value("MemoryMax") == ""  # invalid: systemd sets no limit
    assert {i.reason for i in unit.issues} >= {
        "failed to parse Type= value, ignoring: bogus",
        "invalid environment assignment, ignoring: C",
        "invalid memory limit, ignoring: 16G # note",
    }
