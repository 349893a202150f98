"""The built wheel installs everything under `qtctl`: no generic top-level import names."""

from __future__ import annotations

import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PROBE = """
import importlib.resources, sys
import qtctl, qtctl.checks, qtctl.daemons, qtctl.units, qtctl.cli.app
for mod in (qtctl, qtctl.checks, qtctl.daemons, qtctl.units):
    assert mod.__file__.startswith(sys.argv[1]), mod.__file__
assert importlib.resources.files('qtctl').joinpath('sandbox_boot.sh').is_file()
assert [c.name for c in qtctl.checks.REGISTRY]
for generic in ('checks', 'daemons', 'units'):
    try:
        __import__(generic)
    except ModuleNotFoundError:
        pass
    else:
        raise SystemExit(f'top-level {generic} importable')
print('ok')
"""


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(out),
            str(REPO),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    return next(out.glob("qtctl-*.whl"))


@pytest.mark.slow
def test_wheel_has_only_the_qtctl_namespace(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    tops = {name.split("/")[0] for name in names}
    assert tops == {"qtctl", next(t for t in tops if t.endswith(".dist-info"))}
    assert "qtctl/checks/host_resources.py" in names
    assert "qtctl/sandbox_boot.sh" in names
    assert not any(name.startswith(("tests/", "bench/")) for name in names)


@pytest.mark.slow
def test_importing_from_the_installed_wheel(wheel: Path, tmp_path: Path) -> None:
    target = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--target",
            str(target),
            str(wheel),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    deps = sysconfig.get_paths()["purelib"]
    # -S: no site processing, so the editable install's finder cannot answer instead.
    code = f"import sys; sys.path[:0] = [{str(target)!r}, {deps!r}]\n" + PROBE
    res = subprocess.run(
        [sys.executable, "-S", "-c", code, str(target)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
    )
    assert res.stdout == "ok\n", res.stderr
