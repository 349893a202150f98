"""QT108 dependency-missing against the real systemd: found, repaired with an edited copy of the
unit file (preview, --apply --unsafe, the re-check, a second run, --undo), or left to a person."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from qtctl.sandbox import Sandbox, SandboxSpec

pytestmark = [pytest.mark.sandbox, pytest.mark.slow]
ETC = "/etc/systemd/system"
NEEDS_FEED = "quantum-needs-feed.service"
NEEDS_GHOST = "quantum-needs-ghost.service"


def service(requires: str) -> str:
    return (
        f"[Unit]\nDescription=needs {requires}\nRequires={requires}\nAfter={requires}\n\n"
        "[Service]\nExecStart=/bin/sleep infinity\n\n[Install]\nWantedBy=multi-user.target\n"
    )


UNITS = {
    NEEDS_FEED: service("quantum-feed.service"),
    NEEDS_GHOST: service("quantum-ghost-dep.service"),
    "feed.service": "[Service]\nExecStart=/bin/sleep infinity\n",  # what really provides it
}


@pytest.fixture(scope="module")
def box() -> Iterator[Sandbox]:
    links = {f"{ETC}/multi-user.target.wants/{n}": f"{ETC}/{n}" for n in (NEEDS_FEED, NEEDS_GHOST)}
    spec = SandboxSpec(units=UNITS, symlinks=links, wants=[NEEDS_FEED, NEEDS_GHOST])
    with Sandbox(spec) as sandbox:
        for name in (NEEDS_FEED, NEEDS_GHOST):
            sandbox.wait_for(name, ["active"])
            sandbox.systemctl("stop", name, check=True)
            assert sandbox.systemctl("start", name).returncode == 5  # refused: not found
        yield sandbox


def doctor(box: Sandbox) -> dict[str, dict[str, object]]:
    res = box.qtctl("--format", "json", "doctor", "--select", "QT108")
    return {f["subject"]: f for f in json.loads(res.stdout)["findings"]}


def fix(box: Sandbox, *args: str) -> dict[str, dict[str, object]]:
    res = box.qtctl("--format", "json", "fix", "--select", "QT108", *args)
    assert res.returncode in (0, 1), res.stderr
    doc = json.loads(res.stdout)
    return {r["subject"]: r for r in doc["repairs"]} | {"": {"record": doc["record"]}}


def test_no_provider_means_the_manual_step(box: Sandbox) -> None:
    finding = doctor(box)[NEEDS_GHOST]
    assert (finding["cause"], finding["fixable"]) == ("dependency-missing", False)
    assert "install quantum-ghost-dep.service" in str(finding["fix_hint"])


def test_an_edited_copy_repairs_it_and_undo_puts_it_back(box: Sandbox) -> None:
    original = box.host_path(f"{ETC}/{NEEDS_FEED}").read_text()
    preview = fix(box)[NEEDS_FEED]
    assert preview["held"] == "restarting a service needs --unsafe"
    actions = [str(a) for a in preview["actions"]]  # type: ignore[union-attr]
    assert actions[0].startswith(f"write {ETC}/{NEEDS_FEED}:")
    assert "Requires=feed.service" in actions[0] and "After=feed.service" in actions[0]
    assert actions[1:] == ["systemctl daemon-reload", f"systemctl restart {NEEDS_FEED}"]
    assert box.host_path(f"{ETC}/{NEEDS_FEED}").read_text() == original  # preview: no change

    applied = fix(box, "--apply", "--unsafe")
    assert applied[NEEDS_FEED]["result"] == "fixed"
    assert box.systemctl("is-active", NEEDS_FEED, "feed.service").stdout.split() == [
        "active",
        "active",
    ]
    assert NEEDS_FEED not in doctor(box)
    again = fix(box, "--apply", "--unsafe")
    assert NEEDS_FEED not in again and again[""]["record"] is None  # a second run: nothing

    res = box.qtctl("fix", "--undo", str(applied[""]["record"]))
    assert res.returncode == 0, res.stderr
    assert box.host_path(f"{ETC}/{NEEDS_FEED}").read_text() == original
