"""`qtctl fix` exit codes through the CLI: a preview exits 1 while its plan holds a repair (to
run, or held: its finding remains), 0 with nothing to do; --exit-zero; after --apply, 0 unless
a repaired finding remains or (--exit-non-zero-on-fix) something changed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO


def _world(tmp_path: Path, convert: bool) -> Path:
    code = tmp_path / "code"
    code.mkdir()
    (code / "job.py").write_bytes(b"import os\r\nprint(os.name)\r\n")
    config = tmp_path / "qtctl.toml"
    config.write_text(
        '[redis]\nurl = "redis://127.0.0.1:1/0"\nsocket_timeout = 0.2\n'
        f'[fleet]\ncode_roots = ["{code}"]\n'
        f'[fix]\nstate_dir = "{tmp_path / "state"}"\n'
        f"convert_source_files = {'true' if convert else 'false'}\n"
    )
    return config


def _fix(config: Path, *args: str, select: str = "QT302") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "qtctl", "fix", "-c", str(config), "--select", select, *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )


def test_preview_apply_and_cron_exit_codes(tmp_path: Path) -> None:
    config = _world(tmp_path, convert=True)
    script = tmp_path / "code/job.py"
    assert _fix(config).returncode == 1  # the plan would change something
    assert _fix(config, "--exit-zero").returncode == 0
    assert script.read_bytes().count(b"\r\n") == 2  # a preview changes nothing
    applied = _fix(config, "--apply", "--exit-non-zero-on-fix")
    assert (applied.returncode, applied.stderr) == (1, "")  # cron: something changed
    assert script.read_bytes() == b"import os\nprint(os.name)\n"
    after = _fix(config)
    assert (after.returncode, after.stdout.strip()) == (0, "nothing to fix: no fixable finding")
    assert _fix(config, "--apply", "--exit-non-zero-on-fix").returncode == 0  # nothing changed


def test_apply_without_the_cron_flag_exits_0_when_fixed(tmp_path: Path) -> None:
    config = _world(tmp_path, convert=True)
    assert _fix(config, "--apply").returncode == 0


@pytest.mark.parametrize(("args", "code"), [((), 1), (("--exit-zero",), 0), (("--apply",), 0)])
def test_a_held_repair_is_a_finding_that_remains(
    tmp_path: Path, args: tuple[str, ...], code: int
) -> None:
    """fix.convert_source_files off and QT302 not named: the repair is held, the file stays
    CRLF; the preview says so with 1, --apply (which does nothing) with 0."""
    config = _world(tmp_path, convert=False)
    res = _fix(config, *args, select="QT3")
    assert "held" in res.stdout
    assert res.returncode == code
    assert (tmp_path / "code/job.py").read_bytes().count(b"\r\n") == 2


@pytest.mark.sandbox
@pytest.mark.slow
def test_preview_summary_counts_what_needs_unsafe_on_a_real_systemd() -> None:
    """A failed service whose restart needs --unsafe, a protected one, a disabled one...: the
    closing line counts them by the rule that holds them, and the preview exits 1."""
    from qtctl.sandbox import Sandbox
    from tests.support.fleet import fleet_spec
    from tests.test_systemd_units import settle

    with Sandbox(fleet_spec()) as box:
        settle(box)
        plan = box.qtctl("--format", "json", "fix", "--select", "QT101")
        doc = json.loads(plan.stdout)
        held = [r for r in doc["repairs"] if r["held"]]
        unsafe = [r for r in held if r["held"] == "restarting a service needs --unsafe"]
        assert unsafe and len(held) > len(unsafe)
        res = box.qtctl("fix", "--select", "QT101")
        assert res.returncode == 1
        runnable = len(doc["repairs"]) - len(held)
        assert res.stderr.strip().splitlines()[-1] == (
            f"Found {len(doc['repairs'])} fixable problems: [*] {runnable} fixable with "
            f"--apply, {len(unsafe)} need{'s' if len(unsafe) == 1 else ''} --unsafe, "
            f"{len(held) - len(unsafe)} held back or manual."
        )
        assert box.qtctl("fix", "--select", "QT101", "--exit-zero").returncode == 0
