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


# --- `pip install qtctl` without the `rl` extra (issue 20): everything but the RL agent works ---

CACHE = REPO / ".cache"


@pytest.fixture(scope="module")
def no_torch(wheel: Path) -> Path:
    """A venv where pip installed the wheel with its dependencies and no extra: no torch.
    Kept under .cache/ (keyed by the dependency list, pip's cache beside it, a lock against a
    second run), so only the first run downloads; qtctl itself is reinstalled every time."""
    import fcntl
    import hashlib
    import tomllib

    deps = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    key = hashlib.sha256(repr((sys.version, deps)).encode()).hexdigest()[:12]
    venv = CACHE / f"venv-no-torch-{key}"
    CACHE.mkdir(exist_ok=True)
    with open(CACHE / "venv-no-torch.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (venv / "bin" / "python").exists():
            subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
        pip = [sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install"]
        pip += ["-q", "--disable-pip-version-check", "--cache-dir", str(CACHE / "pip")]
        for extra in ([], ["--force-reinstall", "--no-deps"]):
            res = subprocess.run([*pip, *extra, str(wheel)], capture_output=True, text=True,
                                 timeout=900)  # fmt: skip
            assert res.returncode == 0, res.stderr[-3000:]
    return venv


def in_venv(venv: Path, *argv: str, **env: str) -> subprocess.CompletedProcess[str]:
    """A command of the venv, run from a folder outside the checkout (nothing imports from it)."""
    base = {"PATH": f"{venv / 'bin'}", "NO_COLOR": "1", "COLUMNS": "200", "HOME": str(venv)}
    return subprocess.run(
        [str(venv / "bin" / argv[0]), *argv[1:]],
        capture_output=True,
        text=True,
        env={**base, **env},
        cwd=venv,
        timeout=120,
    )


@pytest.mark.slow
def test_without_the_rl_extra_everything_but_the_agent_works(no_torch: Path) -> None:
    from qtctl.daemons.rl_agent import TORCH_MISSING

    probe = in_venv(no_torch, "python", "-c", "import torch")
    assert probe.returncode == 1 and "No module named 'torch'" in probe.stderr
    where = in_venv(no_torch, "python", "-c", "import qtctl; print(qtctl.__file__)")
    assert where.stdout.startswith(str(no_torch)), where.stdout  # the wheel, not the checkout
    line = f"qtctl: error: {TORCH_MISSING}\n"
    assert in_venv(no_torch, "qtctl", "doctor", "--help").returncode == 0
    for argv in (("run", "rl-agent"), ("run", "rl-agent", "--once")):
        res = in_venv(no_torch, "qtctl", *argv)
        assert (res.returncode, res.stdout, res.stderr) == (2, "", line), argv
    listed = in_venv(no_torch, "qtctl", "run", "--list").stdout
    assert "(torch is not installed)" in next(r for r in listed.splitlines() if "rl-agent" in r)
    config = no_torch / "qtctl.toml"
    config.write_text("[redis]\nurl = 'redis://127.0.0.1:1/0'\n")  # nothing listens on port 1
    env = {"QTCTL_CONFIG": str(config)}
    doctor = in_venv(no_torch, "qtctl", "--format", "json", "doctor", "--select", "QT4", **env)
    assert doctor.returncode == 1 and '"code": "QT400"' in doctor.stdout, doctor.stderr
    report = in_venv(no_torch, "qtctl", "report", "--format", "prometheus", **env)
    assert report.returncode == 1 and "qtctl_streams_known 0" in report.stdout, report.stderr
    fix = in_venv(no_torch, "qtctl", "fix", "--select", "QT4", **env)
    assert fix.returncode in (0, 1) and "Traceback" not in fix.stderr, fix.stderr
    (no_torch / "checkout").mkdir(exist_ok=True)
    lint = in_venv(no_torch, "qtctl", "lint", str(no_torch / "checkout"), **env)
    assert lint.returncode == 0 and "Traceback" not in lint.stderr, lint.stdout + lint.stderr


@pytest.mark.slow
def test_install_and_demo_leave_the_agent_out_with_the_same_line(
    no_torch: Path, tmp_path: Path
) -> None:
    from qtctl.daemons.rl_agent import TORCH_MISSING

    stage = tmp_path / "stage"
    common = ("--root", str(stage), "--venv", str(no_torch), "--user", "qtctl")
    named = in_venv(no_torch, "qtctl", "install", "rl-agent", *common)
    assert (named.returncode, named.stderr) == (2, f"qtctl: error: {TORCH_MISSING}\n")
    assert not stage.exists()  # nothing written
    every = in_venv(no_torch, "qtctl", "install", "--all", *common)
    assert every.returncode == 0 and every.stderr == f"{TORCH_MISSING}\n", every.stderr
    units = sorted(p.name for p in (stage / "etc/systemd/system").iterdir())
    assert units == ["qtctl-bridge.service", "qtctl-risk-kernel.service"]
    # The demo says it in its first line; here the sandbox cannot start (no util-linux on PATH),
    # which stops it right after, before a box boots. Its daemon choice, from the same install:
    demo = in_venv(no_torch, "qtctl", "demo", PATH=str(no_torch / "bin"))
    first, refusal = demo.stderr.splitlines()
    assert (demo.returncode, first) == (2, TORCH_MISSING)
    assert refusal == "qtctl: error: qtctl demo: `unshare` (util-linux) is not installed; " + (
        "run it as root (sudo)"
    )
    # and the box's config, which no longer expects the stream only the agent creates.
    script = (
        "import pathlib; from qtctl.demo.scenario import Demo, CONFIG_PATH;"
        "from qtctl.config import load_config; d = Demo(); print(d.run.rl_agent, *d.daemons);"
        "pathlib.Path('demo.toml').write_text(d.box.spec.files[CONFIG_PATH]);"
        "print(*load_config('demo.toml', env={}).streams.expected)"
    )
    chosen = in_venv(no_torch, "python", "-c", script)
    daemons, expected = chosen.stdout.splitlines()
    assert daemons.split() == ["False", "qtctl-bridge.service", "qtctl-risk-kernel.service"]
    assert "rl_rewards" not in expected.split() and "trade.closed" in expected.split()


@pytest.mark.slow
def test_wheel_holds_every_package_of_the_tree(wheel: Path) -> None:
    """A package left out of pyproject's list installs nothing and fails only when imported."""
    names = set(zipfile.ZipFile(wheel).namelist())
    roots = {"qtctl": "qtctl", "checks": "qtctl/checks", "daemons": "qtctl/daemons"}
    roots["units"] = "qtctl/units"
    for folder, installed in roots.items():
        for init in (REPO / folder).rglob("__init__.py"):
            relative = init.relative_to(REPO / folder).as_posix()
            assert f"{installed}/{relative}" in names, f"{folder}/{relative} is not in the wheel"
    for shipped in ("qtctl.rules.yml", "qtctl-dashboard.json"):
        assert f"qtctl/units/monitoring/{shipped}" in names
