"""An outside attacker's findings against `qtctl lint`, its output formats, baselines and acks
(scratch/attack-20-21.md F1-F12), each replayed through the CLI in a subprocess: a file name or
a baseline that crashes, forges output lines, leaks a root-only file or a secret, or is taken
for something it does not say."""

from __future__ import annotations

import json
import os
import pwd
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

FORMATS: tuple[str, ...] = ("concise", "full", "json", "json-lines", "github", "gitlab")
FORMATS += ("sarif", "junit", "markdown")
SECRET = "sk-live-abcdef1234567890abcd"
FORGED = "::error file=forged.py,line=1::FORGED"
CRLF_SCRIPT = b"#!/bin/bash\r\necho x\r\n"


def _qtctl(where: Path, config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`qtctl -c CONFIG --no-color ARGS` run in `where` (paths are shown relative to it)."""
    return subprocess.run(
        [sys.executable, "-m", "qtctl", "-c", str(config), "--no-color", *args],
        capture_output=True,
        text=True,
        errors="surrogateescape",
        cwd=where,
        timeout=120,
        env={**os.environ, "COLUMNS": "200", "PYTHONPATH": str(REPO)},
    )


@pytest.fixture
def arena(tmp_path: Path) -> tuple[Path, Path]:
    """A config (its state folder and code root in the temp tree) and an empty git checkout."""
    config = tmp_path / "cfg.toml"
    config.write_text(
        f'[fix]\nstate_dir = "{tmp_path / "state"}"\n'
        f'[fleet]\ncode_roots = ["{tmp_path / "code"}"]\n'
    )
    checkout = tmp_path / "repo"
    checkout.mkdir()
    subprocess.run(["git", "init", "-q", str(checkout)], check=True)
    return config, checkout


def _unit_checkout(checkout: Path) -> None:
    (checkout / "units").mkdir()
    unit = "[Service]\nExecStart=/home/qt/quantum_trader/missing.py\n"
    (checkout / "units" / "quantum-x.service").write_text(unit)


def _lint(checkout: Path, config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return _qtctl(checkout, config, "lint", "--path-map", "/home/qt/quantum_trader=.", *args, ".")


def test_a_name_that_is_not_utf8_is_reported_escaped_in_every_format(
    arena: tuple[Path, Path],
) -> None:
    """F1: `bad\\xffutf8.sh` crashed every format (the fingerprint hash, SARIF's URI)."""
    config, checkout = arena
    (checkout / os.fsdecode(b"bad\xffutf8.sh")).write_bytes(CRLF_SCRIPT)
    for fmt in FORMATS:
        res = _lint(checkout, config, "--fail-on", "info", "-f", fmt)
        assert res.returncode == 1, (fmt, res.stderr)
        shown = ("bad\\xffutf8.sh", "bad\\\\xffutf8.sh", "bad%FFutf8.sh")  # JSON, SARIF URI
        assert any(name in res.stdout for name in shown), fmt
        assert "\udcff" not in res.stdout, fmt
        if fmt in ("json", "gitlab", "sarif"):
            json.loads(res.stdout)


def test_concise_shows_one_finding_per_line_whatever_the_file_name(
    arena: tuple[Path, Path],
) -> None:
    """F2: a newline in a name forged `::error` workflow commands and fake findings."""
    config, checkout = arena
    (checkout / f"a\n{FORGED} ANNOTATION.sh").write_bytes(CRLF_SCRIPT)
    (checkout / "z\nquantum-ai.service:1: QT104 forged finding.sh").write_bytes(CRLF_SCRIPT)
    res = _lint(checkout, config, "--fail-on", "info", "-f", "concise")
    lines = res.stdout.splitlines()
    assert res.returncode == 1 and len(lines) == 3, res.stdout  # two findings and the summary
    assert all(line.startswith(("a\\x0a::error", "z\\x0aquantum", "Found")) for line in lines)


def test_a_baseline_reason_is_one_line_and_redacted(arena: tuple[Path, Path]) -> None:
    """F6: a committed baseline's reason forged lines and printed a token in clear."""
    config, checkout = arena
    _unit_checkout(checkout)
    written = checkout / "b1.json"
    assert _lint(checkout, config, "--write-baseline", str(written)).returncode == 0
    doc = json.loads(written.read_text())
    for ack in doc["acks"]:
        ack["reason"] = f"ok\n{FORGED} FROM BASELINE API_KEY={SECRET}"
    forged = checkout / "b2.json"
    forged.write_text(json.dumps(doc))
    for fmt in FORMATS:
        res = _lint(checkout, config, "--baseline", str(forged), "-f", fmt)
        assert res.returncode == 0, (fmt, res.stderr)
        assert SECRET not in res.stdout + res.stderr, fmt
        assert not any(line.startswith("::error") for line in res.stdout.splitlines()), fmt


def test_an_env_file_linked_to_a_root_only_file_is_not_read(tmp_path: Path) -> None:
    """F3: root linting the fleet user's checkout quoted a root-only file behind a link."""
    if os.geteuid() != 0:
        pytest.skip("the attack is a link the fleet user plants for root")
    nobody = pwd.getpwnam("nobody")
    secret = tmp_path / "rootonly"
    secret.write_text("FOO=bar # secret comment text XYZ\nexport LEAKNAME=v\n")
    secret.chmod(0o600)
    checkout = tmp_path / "r6"
    (checkout / "units").mkdir(parents=True)
    (checkout / "deploy").mkdir()
    (checkout / "units" / "quantum-a.service").write_text(
        "[Service]\nExecStart=/bin/true\nEnvironmentFile=/home/qt/quantum_trader/deploy/ai.env\n"
        "Restart=always\nMemoryMax=1G\nCPUQuota=50%\n"
    )
    (checkout / "deploy" / "ai.env").symlink_to(secret)
    for path in (checkout, *checkout.rglob("*")):
        os.chown(path, nobody.pw_uid, nobody.pw_gid, follow_symlinks=False)
    config = tmp_path / "cfg.toml"
    config.write_text(f'[fix]\nstate_dir = "{tmp_path / "state"}"\n')
    for fmt in ("concise", "json"):
        res = _lint(checkout, config, "-f", fmt)
        shown = res.stdout + res.stderr
        assert "XYZ" not in shown and "LEAKNAME" not in shown, shown
        assert "not read" in shown and "symlink" in shown, shown


def test_an_expiry_past_year_9999_is_refused_before_it_is_stored(
    arena: tuple[Path, Path],
) -> None:
    """F7: `--for 100000000d` was stored, then crashed `ack --list` and doctor (exit 3)."""
    config, checkout = arena
    for duration in ("100000000d", "99999999999999999999d", "9999999999w"):
        res = _qtctl(checkout, config, "ack", "QT405", "*", "--reason", "typo", "--for", duration)
        assert res.returncode == 2 and "9999" in res.stderr, res.stderr
    assert not (config.parent / "state" / "acks.json").exists()
    _unit_checkout(checkout)
    written = checkout / "b1.json"
    _lint(checkout, config, "--write-baseline", str(written))
    for expires in ("253402300800", "1e19", "1e308", "-1e308"):
        bad = checkout / "b3.json"
        bad.write_text(written.read_text().replace('"expires": null', f'"expires": {expires}'))
        res = _lint(checkout, config, "--baseline", str(bad), "-f", "concise")
        assert res.returncode == 2 and "acks[0]: expires" in res.stderr, (expires, res.stderr)


def test_an_empty_expiry_is_a_usage_error(arena: tuple[Path, Path]) -> None:
    """F8: `--for "$UNSET"` made an ack that never expires."""
    config, checkout = arena
    for option in ("--for", "--until"):
        res = _qtctl(checkout, config, "ack", "QT401", "x", "--reason", "r", option, "")
        assert res.returncode == 2, res.stderr
    assert not (config.parent / "state" / "acks.json").exists()


def test_a_baseline_nested_too_deep_is_one_line(arena: tuple[Path, Path]) -> None:
    """F9: a 100,000-deep baseline was a RecursionError (exit 3, 'internal error')."""
    config, checkout = arena
    (checkout / "bl.json").write_text("[" * 100_000 + "]" * 100_000)
    res = _lint(checkout, config, "--baseline", "bl.json")
    assert res.returncode == 2 and "nested too deep" in res.stderr, res.stderr


def test_a_baseline_behind_a_symlink_is_not_read(arena: tuple[Path, Path]) -> None:
    """F10: a planted link made root open a root-only file and quote its `code`."""
    config, checkout = arena
    secret = config.parent / "rootsecret.json"
    secret.write_text(
        '{"schema":"qtctl.baseline/1","tool":"lint","acks":[{"code":"TOPSECRETVALUE",'
        '"subject":"x","fingerprint":"aaaaaaaa","reason":"r","expires":null,"created":1}]}'
    )
    secret.chmod(0o600)
    (checkout / "bl.json").symlink_to(secret)
    res = _lint(checkout, config, "--baseline", "bl.json")
    assert res.returncode == 2 and "symbolic link" in res.stderr, res.stderr
    assert "TOPSECRET" not in res.stderr


def test_a_baseline_entry_without_a_fingerprint_or_tool_is_refused(
    arena: tuple[Path, Path],
) -> None:
    """F11: `"fingerprint": ""` acknowledged every finding of a code, unseen in review."""
    config, checkout = arena
    _unit_checkout(checkout)
    entry = {"code": "QT104", "subject": "*", "fingerprint": "", "reason": "r", "created": 1}
    for tool, fingerprint in (("lint", ""), ("x", "aaaaaaaa")):
        doc = {
            "schema": "qtctl.baseline/1",
            "tool": tool,
            "acks": [entry | {"fingerprint": fingerprint}],
        }
        (checkout / "bl.json").write_text(json.dumps(doc))
        res = _lint(checkout, config, "--baseline", "bl.json")
        assert res.returncode == 2, (tool, res.stderr)


def test_ack_list_escapes_and_redacts_like_the_confirmation(arena: tuple[Path, Path]) -> None:
    """F12: `ack --list` printed the reason's newline raw and the token in clear."""
    config, checkout = arena
    reason = f"x\n::error::forged API_KEY={SECRET}"
    res = _qtctl(checkout, config, "ack", "QT400", "redis", "--reason", reason, "--for", "1h")
    assert res.returncode == 0, res.stderr
    listed = _qtctl(checkout, config, "ack", "--list")
    assert listed.returncode == 0 and len(listed.stdout.splitlines()) == 1, listed.stdout
    assert SECRET not in listed.stdout and "x\\x0a::error" in listed.stdout


def test_sparse_nul_or_line_flooded_unit_files_are_not_parsed(arena: tuple[Path, Path]) -> None:
    """F5: a NUL-filled unit file (`truncate -s 16M`) took ~10 s each to parse (systemd's
    read_line ends a line at every NUL); 20 of them: 5.5 minutes. Now one finding each."""
    config, checkout = arena
    units = checkout / "units"
    units.mkdir()
    for index in range(20):
        with open(units / f"quantum-b{index}.service", "wb") as sparse:
            sparse.truncate(16 * 2**20)
    (units / "quantum-c.service").write_bytes(b"\r\n" * 2_000_000)
    res = _lint(checkout, config, "-f", "json")
    assert res.returncode == 1, res.stderr
    found = [f for f in json.loads(res.stdout)["findings"] if f["code"] == "QT104"]
    assert sorted(f["cause"] for f in found) == ["not-a-unit-file"] * 21, found
    assert sum("NUL bytes" in f["message"] for f in found) == 20
    assert json.loads(res.stdout)["duration_sec"] < 60  # was 329 s: a hang, not a speed target


def test_another_users_checkout_keeps_its_gitignore(arena: tuple[Path, Path]) -> None:
    """F4: root linting the fleet user's checkout lost `.gitignore` to git's 'dubious
    ownership' refusal, silently; a repository git still refuses is said on stderr."""
    if os.geteuid() != 0:
        pytest.skip("the checkout must be another user's")
    config, checkout = arena
    nobody = pwd.getpwnam("nobody")
    (checkout / ".gitignore").write_text("ignored.sh\n")
    for name in ("ignored.sh", "kept.sh"):
        (checkout / name).write_bytes(CRLF_SCRIPT)
    for path in (checkout, *checkout.rglob("*")):
        os.chown(path, nobody.pw_uid, nobody.pw_gid, follow_symlinks=False)
    res = _lint(checkout, config, "--fail-on", "info", "-f", "concise")
    assert "kept.sh" in res.stdout and "ignored.sh" not in res.stdout, res.stdout
    subprocess.run(["rm", "-rf", str(checkout / ".git")], check=True)
    (checkout / ".git").write_text("gitdir: /nonexistent\n")
    res = _lint(checkout, config, "--fail-on", "info", "-f", "concise")
    assert "ignored.sh" in res.stdout, res.stdout
    assert res.stderr.count("git ignore rules not applied") == 1, res.stderr


def test_write_baseline_never_replaces_a_device(arena: tuple[Path, Path]) -> None:
    """F21: `--write-baseline /dev/null` made /dev/null a regular file."""
    if os.geteuid() != 0:
        pytest.skip("mknod needs root")
    config, checkout = arena
    _unit_checkout(checkout)
    device = config.parent / "null"
    os.mknod(device, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    res = _lint(checkout, config, "--write-baseline", str(device))
    assert res.returncode == 2 and "character device" in res.stderr, res.stderr
    assert stat.S_ISCHR(os.lstat(device).st_mode)


def test_a_refused_lint_target_is_a_usage_error_not_a_pass(tmp_path: Path) -> None:
    """F17: a planted symlink as the checkout (or on the way to a named file), a FIFO or a
    device named on the command line: 'All checks passed', exit 0."""
    if os.geteuid() != 0:
        pytest.skip("the link must be another user's")
    nobody = pwd.getpwnam("nobody")
    private = tmp_path / "rootonly"
    (private / "units").mkdir(parents=True)
    private.chmod(0o700)
    (private / "units" / "quantum-r.service").write_text("[Service]\nExecStart=/bin/true\n")
    home = tmp_path / "home_qt"
    home.mkdir()
    (home / "quantum_trader").symlink_to(private)
    for path in (home, home / "quantum_trader"):
        os.chown(path, nobody.pw_uid, nobody.pw_gid, follow_symlinks=False)
    os.mkfifo(tmp_path / "ff.service")
    config = tmp_path / "cfg.toml"
    config.write_text(f'[fix]\nstate_dir = "{tmp_path / "state"}"\n')
    named = home / "quantum_trader" / "units" / "quantum-r.service"
    for target in (home / "quantum_trader", named, tmp_path / "ff.service", Path("/dev/zero")):
        res = _qtctl(tmp_path, config, "lint", "-f", "concise", str(target))
        assert res.returncode == 2 and "not linted" in res.stderr, (target, res.stderr)


def test_a_fifo_ignore_file_does_not_hang_lint(arena: tuple[Path, Path]) -> None:
    """F20: a FIFO `.gitignore` or `.git/info/exclude` blocked `git check-ignore`, and lint
    with it, for good."""
    config, checkout = arena
    (checkout / "top.sh").write_bytes(CRLF_SCRIPT)
    exclude = checkout / ".git" / "info" / "exclude"
    for fifo in (checkout / ".gitignore", exclude):
        exclude.unlink(missing_ok=True)
        os.mkfifo(fifo)
        res = _lint(checkout, config, "--fail-on", "info", "-f", "concise")
        assert res.returncode == 1 and "top.sh" in res.stdout, res.stderr
        assert "git ignore rules not applied" in res.stderr and "not a plain file" in res.stderr
        fifo.unlink()


def test_lint_markdown_is_titled_lint(arena: tuple[Path, Path]) -> None:
    """F19: lint's Markdown report said `# qtctl doctor: warning`."""
    config, checkout = arena
    _unit_checkout(checkout)
    res = _lint(checkout, config, "-f", "markdown")
    assert res.stdout.startswith("# qtctl lint: "), res.stdout[:80]
