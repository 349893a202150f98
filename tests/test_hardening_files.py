"""Root-run qtctl against a hostile fleet user: planted symlinks, races run by a concurrent
attacker as `nobody`, undo traversal and tampered records, and the modes of what qtctl keeps.

Each test owns a temp tree under /tmp (the fleet user's folder is `nobody`'s) with a root-only
"victim" file that an attack would chown, chmod or overwrite; the victim must stay untouched.
"""

from __future__ import annotations

import json
import os
import pwd
import stat
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from qtctl.adapters import safe_files
from qtctl.diagnosis.line_endings import to_lf
from tests.conftest import run_cli
from tests.support.redis_server import RedisServer

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="attacks root-run qtctl: needs root")
NOBODY = pwd.getpwnam("nobody")
VICTIM_BYTES = b"root:$6$secret:19000:0:99999:7:::\r\nqt:!:19000::::::\r\n"
SETPRIV = ["setpriv", "--reuid", "nobody", "--regid", "nogroup", "--clear-groups"]


@dataclass(frozen=True)
class Arena:
    """A temp tree: `fleet` belongs to the fleet user, `victim` is root's own."""

    root: Path
    fleet: Path
    victim: Path

    def victim_intact(self) -> bool:
        info = os.lstat(self.victim)
        return (
            stat.S_ISREG(info.st_mode)
            and (info.st_uid, info.st_gid, stat.S_IMODE(info.st_mode)) == (0, 0, 0o600)
            and self.victim.read_bytes() == VICTIM_BYTES
        )

    def fleet_file(self, rel: str, data: bytes, mode: int = 0o644) -> Path:
        path = self.fleet / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        os.chown(path.parent, NOBODY.pw_uid, NOBODY.pw_gid)
        if path.is_symlink():
            path.unlink()  # an attack that left a link here must not steer the set-up itself
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, mode)
        os.write(fd, data)
        os.fchmod(fd, mode)
        os.fchown(fd, NOBODY.pw_uid, NOBODY.pw_gid)
        os.close(fd)
        return path

    def as_fleet_user(self, *argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*SETPRIV, *argv], capture_output=True, text=True, check=True)


@pytest.fixture
def arena() -> Iterator[Arena]:
    root = Path(tempfile.mkdtemp(prefix="qtctl-attack-"))
    root.chmod(0o755)
    fleet = root / "fleet"
    fleet.mkdir()
    os.chown(fleet, NOBODY.pw_uid, NOBODY.pw_gid)
    victim = root / "shadow"
    victim.write_bytes(VICTIM_BYTES)
    victim.chmod(0o600)
    try:
        yield Arena(root, fleet, victim)
    finally:  # rm, not shutil.rmtree: it also removes trees deeper than Python's stack
        subprocess.run(["rm", "-rf", "--one-file-system", str(root)], check=True)


class Attacker:
    """A loop run as `nobody` (system python, os only), stopped by its pid."""

    def __init__(self, body: str) -> None:
        script = f"import os, time\nwhile True:\n{body}"
        self.proc = subprocess.Popen([*SETPRIV, "/usr/bin/python3", "-c", script])

    def __enter__(self) -> Attacker:
        time.sleep(0.2)  # the loop is running
        return self

    def __exit__(self, *exc: object) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


def _steal_temp_files(folder: Path, victim: Path) -> str:
    """Rename every qtctl temp file away and put a symlink to the victim in its place."""
    return (
        f"    for n in os.listdir({str(folder)!r}):\n"
        "        if 'qtctl' in n and not n.endswith('.stolen'):\n"
        "            try:\n"
        f"                p = os.path.join({str(folder)!r}, n)\n"
        "                os.rename(p, p + '.stolen')\n"
        f"                os.symlink({str(victim)!r}, p)\n"
        "            except OSError:\n"
        "                pass\n"
    )


def test_temp_file_swapped_for_a_symlink_never_reaches_the_victim(arena: Arena) -> None:
    """The attack that worked on the old path-based chmod/chown after mkstemp (victim chowned to
    nobody and made 0755 within 29 rewrites): now the mode and owner are set through the fd."""
    target = arena.fleet / "exit_watch.sh"
    refused = 0
    with Attacker(_steal_temp_files(arena.fleet, arena.victim)):
        for _ in range(400):
            arena.fleet_file("exit_watch.sh", b"#!/bin/sh\r\necho hi\r\n", 0o755)
            try:
                data, snapshot = safe_files.read_file(str(target))
                safe_files.replace_file(str(target), to_lf(data), snapshot)
            except (safe_files.UnsafePath, OSError):
                refused += 1
    assert arena.victim_intact()
    print(f"{refused} of 400 rewrites refused under attack")


def test_parent_folder_swapped_for_a_symlink_between_read_and_write(arena: Arena) -> None:
    real, decoy = arena.fleet / "scripts", arena.fleet / "scripts.real"
    victim_dir = arena.root / "sudoers.d"
    victim_dir.mkdir(mode=0o750)
    arena.victim.rename(victim_dir / "run.sh")
    victim = Arena(arena.root, arena.fleet, victim_dir / "run.sh")
    swap = (
        "    try:\n"
        f"        os.rename({str(real)!r}, {str(decoy)!r})\n"
        f"        os.symlink({str(victim_dir)!r}, {str(real)!r})\n"
        "        time.sleep(0.0005)\n"
        f"        os.unlink({str(real)!r})\n"
        f"        os.rename({str(decoy)!r}, {str(real)!r})\n"
        "        time.sleep(0.001)\n"
        "    except OSError:\n"
        "        pass\n"
    )
    arena.fleet_file("scripts/run.sh", b"echo a\r\n")
    done = 0
    with Attacker(swap):
        for _ in range(400):
            try:
                data, snapshot = safe_files.read_file(str(real / "run.sh"))
                time.sleep(0.0002)
                safe_files.replace_file(str(real / "run.sh"), to_lf(data) + b"#", snapshot)
                done += 1
            except (safe_files.UnsafePath, OSError):
                pass
    assert victim.victim_intact()
    print(f"{done} of 400 rewrites went through, all to the fleet's own file")


def test_a_symlinked_folder_in_the_fleet_tree_is_not_followed(arena: Arena) -> None:
    victim_dir = arena.root / "etc"
    victim_dir.mkdir()
    arena.victim.rename(victim_dir / "shadow")
    os.symlink(victim_dir, arena.fleet / "conf")
    with pytest.raises(safe_files.UnsafePath, match="symlink in a folder another user can"):
        safe_files.read_file(str(arena.fleet / "conf" / "shadow"))
    with pytest.raises(safe_files.UnsafePath, match="symlink"):
        safe_files.write_file(str(arena.fleet / "conf" / "shadow"), b"owned\n")
    assert Arena(arena.root, arena.fleet, victim_dir / "shadow").victim_intact()


def _code_fleet(arena: Arena, config: Path) -> Path:
    """A code root the fleet user owns: one CRLF source, and a planted link to the victim."""
    code = arena.fleet / "code"
    legacy = arena.fleet_file("code/legacy.py", b"import os\r\nprint(os.getcwd())\r\n")
    os.symlink(arena.victim, code / "evil.py")
    os.lchown(code / "evil.py", NOBODY.pw_uid, NOBODY.pw_gid)
    config.write_text(
        f"[fleet]\ncode_roots = ['{code}']\n[fix]\nstate_dir = '{arena.root / 'state'}'\n"
        "convert_source_files = true\n"
    )
    return legacy


def _apply_qt302() -> dict[str, object]:
    res = run_cli("--format", "json", "fix", "--select", "QT302", "--apply")
    assert res.returncode in (0, 1), res.stderr
    doc: dict[str, object] = json.loads(res.stdout)
    return doc


def test_fix_converts_the_fleet_file_and_leaves_a_planted_link_alone(
    arena: Arena, isolated_env: Path
) -> None:
    legacy = _code_fleet(arena, isolated_env)
    doc = _apply_qt302()
    assert legacy.read_bytes() == b"import os\nprint(os.getcwd())\n"
    info = os.stat(legacy)
    assert (info.st_uid, stat.S_IMODE(info.st_mode)) == (NOBODY.pw_uid, 0o644)  # kept
    assert arena.victim_intact()
    assert os.path.islink(legacy.parent / "evil.py")
    [repair] = doc["repairs"]  # type: ignore[misc]
    assert "evil.py" not in json.dumps(repair)  # the scan never read through the planted link
    state = arena.root / "state" / "fixes"
    assert stat.S_IMODE(os.stat(state).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(state.parent).st_mode) == 0o700
    record = state / f"{doc['record']}.json"
    assert stat.S_IMODE(os.stat(record).st_mode) == 0o600
    [backup] = (state / str(doc["record"])).iterdir()
    assert stat.S_IMODE(os.stat(backup).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(backup.parent).st_mode) == 0o700


def test_undo_refuses_a_target_replaced_by_a_symlink(arena: Arena, isolated_env: Path) -> None:
    legacy = _code_fleet(arena, isolated_env)
    doc = _apply_qt302()
    arena.as_fleet_user("rm", str(legacy))
    arena.as_fleet_user("ln", "-s", str(arena.victim), str(legacy))
    undo = run_cli("fix", "--undo", str(doc["record"]))
    assert undo.returncode != 0
    assert "is a symlink" in undo.stderr
    assert arena.victim_intact()


def test_undo_keeps_a_later_edit(arena: Arena, isolated_env: Path) -> None:
    legacy = _code_fleet(arena, isolated_env)
    doc = _apply_qt302()
    arena.as_fleet_user("sh", "-c", f"echo '# edited later' >> {legacy}")
    undo = run_cli("fix", "--undo", str(doc["record"]))
    assert undo.returncode == 2
    assert "changed since fix wrote it" in undo.stderr
    assert legacy.read_bytes().endswith(b"# edited later\n")


@pytest.mark.parametrize(
    "ref", ["../../../etc/passwd", "/etc/passwd", "20261202T130000Z-1a2b/../../x", "LAST.json"]
)
def test_undo_accepts_only_record_ids(arena: Arena, isolated_env: Path, ref: str) -> None:
    _code_fleet(arena, isolated_env)
    _apply_qt302()
    res = run_cli("fix", "--undo", ref)
    assert res.returncode == 2
    assert res.stderr.startswith(f"qtctl: error: {ref!r} is not a fix record id")


def test_undo_refuses_records_the_fleet_user_could_have_planted(
    arena: Arena, isolated_env: Path
) -> None:
    legacy = _code_fleet(arena, isolated_env)
    doc = _apply_qt302()
    fixes = arena.root / "state" / "fixes"
    forged = fixes / "29990101T000000Z-beef.json"
    forged.write_text(
        json.dumps(
            {
                "id": forged.stem,
                "started": 0,
                "changes": [
                    {"kind": "secure-file", "path": str(arena.victim), "previous_mode": 0o4777}
                ],
            }
        )
    )
    os.chown(forged, NOBODY.pw_uid, NOBODY.pw_gid)
    res = run_cli("fix", "--undo", "LAST")
    assert res.returncode == 2
    assert "was not written by qtctl (owner uid 65534" in res.stderr
    forged.unlink()
    os.symlink(fixes / f"{doc['record']}.json", forged)
    res = run_cli("fix", "--undo", forged.stem)
    assert res.returncode != 0 and "symlink" in res.stderr
    assert arena.victim_intact()
    assert legacy.read_bytes() == b"import os\nprint(os.getcwd())\n"  # nothing was undone


def _env_fleet(arena: Arena, config: Path) -> Path:
    envs = arena.fleet / "env"
    exposed = arena.fleet_file("env/exchange.env", b"EXCHANGE_API_SECRET=s3cr3t-value\n")
    shared = arena.root / "shared.env"  # root's, world-readable: not the fleet's to narrow
    shared.write_bytes(b"BINANCE_API_SECRET=another-value\n")
    shared.chmod(0o644)
    os.symlink(shared, envs / "planted.env")
    config.write_text(
        f"[services]\nenv_dirs = ['{envs}']\n[fix]\nstate_dir = '{arena.root / 'state'}'\n"
    )
    return exposed


def test_secure_file_acts_through_the_fd_and_undo_never_sets_setuid(
    arena: Arena, isolated_env: Path
) -> None:
    exposed = _env_fleet(arena, isolated_env)
    res = run_cli("--format", "json", "fix", "--select", "QT703", "--apply")
    doc = json.loads(res.stdout)
    assert stat.S_IMODE(os.stat(exposed).st_mode) == 0o600
    shared = os.stat(arena.root / "shared.env")
    assert (shared.st_uid, stat.S_IMODE(shared.st_mode)) == (0, 0o644)  # the link was not followed
    record = arena.root / "state" / "fixes" / f"{doc['record']}.json"
    data = json.loads(record.read_text())
    for change in data["changes"]:
        if change["kind"] == "secure-file":
            change["previous_mode"] = 0o6777  # whatever the record says
    record.write_text(json.dumps(data))
    undo = run_cli("fix", "--undo", doc["record"])
    assert undo.returncode == 0, undo.stderr
    mode = stat.S_IMODE(os.stat(exposed).st_mode)
    assert mode & 0o7000 == 0 and mode == 0o777
    assert os.stat(exposed).st_uid == NOBODY.pw_uid


def test_secure_file_refuses_an_inode_swapped_after_the_record(
    arena: Arena, isolated_env: Path
) -> None:
    exposed = _env_fleet(arena, isolated_env)
    doc = json.loads(run_cli("--format", "json", "fix", "--select", "QT703", "--apply").stdout)
    # The fleet user owns the folder: it moves the secured file away and puts another there.
    arena.as_fleet_user("sh", "-c", f"mv {exposed} {exposed}.old && echo X=1 > {exposed}")
    os.chmod(exposed, 0o600)
    undo = run_cli("fix", "--undo", doc["record"])
    assert undo.returncode != 0
    assert "is not the file qtctl recorded (inode changed)" in undo.stderr
    assert stat.S_IMODE(os.stat(exposed).st_mode) == 0o600


def test_report_output_planted_as_a_symlink_is_replaced_not_followed(
    arena: Arena, isolated_env: Path
) -> None:
    out = arena.fleet / "health.prom"
    os.symlink(arena.victim, out)
    lock_dir = arena.root / "locks"
    isolated_env.write_text(
        "[redis]\nurl = 'redis://127.0.0.1:1/0'\n"
        f"[report]\nlock_dir = '{lock_dir}'\noutput_mode = '0640'\n"
    )
    res = run_cli("report", "--format", "prometheus", "--output", str(out))
    assert res.returncode in (0, 1, 2), res.stderr
    assert arena.victim_intact()
    info = os.lstat(out)
    assert stat.S_ISREG(info.st_mode) and stat.S_IMODE(info.st_mode) == 0o640
    assert "qtctl_health_status" in out.read_text()
    assert stat.S_IMODE(os.stat(lock_dir).st_mode) == 0o700
    assert not [p for p in arena.fleet.iterdir() if p.name.endswith(".lock")]


def test_report_lock_that_is_a_symlink_or_foreign_is_refused(
    arena: Arena, isolated_env: Path
) -> None:
    out = arena.root / "health.json"  # root's own folder: the lock goes beside the output
    lock = arena.root / ".health.json.lock"
    os.symlink(arena.victim, lock)
    isolated_env.write_text("[redis]\nurl = 'redis://127.0.0.1:1/0'\n")
    res = run_cli("report", "--output", str(out))
    assert res.returncode == 3
    assert res.stderr.strip() == (
        f"qtctl: error: cannot open the report lock {lock}: it is a symlink; refused"
    )
    lock.unlink()
    lock.write_text("")
    os.chown(lock, NOBODY.pw_uid, NOBODY.pw_gid)
    res = run_cli("report", "--output", str(out))
    assert res.returncode == 3 and "is not a plain file of uid 0 (uid 65534)" in res.stderr
    assert arena.victim_intact() and not out.exists()


def test_install_root_refuses_a_planted_unit_folder_link(arena: Arena) -> None:
    victim_dir = arena.root / "sudoers.d"
    victim_dir.mkdir(mode=0o750)
    (arena.fleet / "etc" / "systemd").mkdir(parents=True)
    os.chown(arena.fleet / "etc", NOBODY.pw_uid, NOBODY.pw_gid)
    os.chown(arena.fleet / "etc" / "systemd", NOBODY.pw_uid, NOBODY.pw_gid)
    os.symlink(victim_dir, arena.fleet / "etc" / "systemd" / "system")
    res = run_cli("install", "bridge", "--root", str(arena.fleet))
    assert res.returncode != 0
    assert "symlink in a folder another user can write" in res.stderr
    assert list(victim_dir.iterdir()) == []


# Attacks found by an outside review (a session that knew only the CLI and the README).


def test_a_staging_root_swapped_for_a_link_to_slash_stays_staging(arena: Arena) -> None:
    from qtctl.install import InstallOptions

    link = arena.fleet / "stage"
    os.symlink("/", link)
    assert InstallOptions(root=str(link)).staging  # never systemd, never useradd
    assert not InstallOptions(root="/").staging and not InstallOptions(root="/./").staging
    victim_root = arena.root / "rootfs"  # a stand-in for /: the test never writes the host's
    (victim_root / "etc" / "systemd" / "system").mkdir(parents=True)
    os.unlink(link)
    os.symlink(victim_root, link)
    res = run_cli("install", "bridge", "--root", str(link), "--no-start")
    assert res.returncode != 0 and "symlink in a folder another user can write" in res.stderr
    assert list((victim_root / "etc" / "systemd" / "system").iterdir()) == []


@pytest.mark.parametrize("planted", ["symlink", "fifo", "zero"])
def test_install_never_reads_a_planted_unit_file(arena: Arena, planted: str) -> None:
    units = arena.fleet / "etc" / "systemd" / "system"
    units.mkdir(parents=True)
    target = units / "qtctl-bridge.service"
    if planted == "symlink":
        os.symlink(arena.victim, target)
    elif planted == "fifo":
        os.mkfifo(target)
    else:
        os.symlink("/dev/zero", target)
    res = subprocess.run(
        [*run_cli_argv(), "install", "bridge", "--root", str(arena.fleet), "--dry-run"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert res.returncode == 2, res.stderr
    assert res.stderr.startswith(f"qtctl: error: not installing over {target}: ")
    assert "secret" not in res.stdout + res.stderr
    assert arena.victim_intact()


def run_cli_argv() -> list[str]:
    import sys

    return [sys.executable, "-m", "qtctl"]


def test_secure_file_refuses_a_hard_link_to_a_file_outside_the_fleet(
    arena: Arena, isolated_env: Path
) -> None:
    envs = arena.fleet / "env"
    envs.mkdir()
    outside = arena.root / "db.env"  # root's, world-readable, with a secret
    outside.write_bytes(b"DB_PASSWORD=hunter2hunter2\n")
    outside.chmod(0o644)
    os.link(outside, envs / "h.env")  # what protected_hardlinks=0 lets the fleet user do
    isolated_env.write_text(
        f"[services]\nenv_dirs = ['{envs}']\n[fix]\nstate_dir = '{arena.root / 'state'}'\n"
    )
    res = run_cli("--format", "json", "fix", "--select", "QT703", "--apply", "--unsafe")
    [repair] = json.loads(res.stdout)["repairs"]
    assert repair["result"] == "held"
    assert repair["held"] == f"not changed: {envs / 'h.env'}: has 2 hard links"
    assert stat.S_IMODE(os.stat(outside).st_mode) == 0o644
    assert os.stat(outside).st_uid == 0


def test_failed_or_empty_undos_leave_no_record_and_last_means_the_last_fix(
    arena: Arena, isolated_env: Path
) -> None:
    legacy = _code_fleet(arena, isolated_env)
    doc = _apply_qt302()
    assert run_cli("fix", "--undo", "").returncode == 2  # a mistake, not a preview
    arena.as_fleet_user("sh", "-c", f"echo '# edited' >> {legacy}")
    assert run_cli("fix", "--undo", "LAST").returncode == 2  # refused: a later edit
    fixes = arena.root / "state" / "fixes"
    assert sorted(p.stem for p in fixes.glob("*.json")) == [doc["record"]]
    arena.as_fleet_user("sh", "-c", f"printf 'import os\\nprint(os.getcwd())\\n' > {legacy}")
    undone = run_cli("fix", "--undo", "LAST")
    assert undone.returncode == 0, undone.stderr
    assert legacy.read_bytes() == b"import os\r\nprint(os.getcwd())\r\n"
    again = run_cli("fix", "--undo", "LAST")  # the newest fix, not the undo just recorded
    assert again.returncode == 0 and f"undo of {doc['record']}" in again.stdout


def test_an_untrusted_state_folder_is_refused_before_anything_is_created(
    arena: Arena, isolated_env: Path
) -> None:
    legacy = _code_fleet(arena, isolated_env)
    state = arena.fleet / "state"
    state.mkdir(mode=0o777)
    state.chmod(0o777)
    os.chown(state, NOBODY.pw_uid, NOBODY.pw_gid)
    isolated_env.write_text(isolated_env.read_text().replace(str(arena.root / "state"), str(state)))
    res = run_cli("fix", "--select", "QT302", "--apply")
    assert res.returncode == 2 and "fix refuses to keep its journal there" in res.stderr
    assert list(state.iterdir()) == []
    assert legacy.read_bytes().endswith(b"\r\n")  # nothing changed without a journal


def test_streams_restore_quotes_none_of_a_non_archive(
    arena: Arena, isolated_env: Path, redis_server: RedisServer
) -> None:
    isolated_env.write_text(f"[redis]\nurl = '{redis_server.url}'\n")
    os.symlink(arena.victim, arena.fleet / "x.jsonl.gz")
    res = run_cli("streams", "restore", str(arena.fleet / "x.jsonl.gz"), "--into", "k")
    assert res.returncode == 2 and "symlink" in res.stderr
    (arena.root / "y.jsonl.gz").write_bytes(VICTIM_BYTES)
    res = run_cli("streams", "restore", str(arena.root / "y.jsonl.gz"), "--into", "k")
    assert res.returncode == 2, res.stderr
    said = f"{arena.root / 'y.jsonl.gz'} is not an archive qtctl wrote (gzip JSON lines)"
    assert res.stderr == f"qtctl: error: {said}\n"  # no byte of the file quoted


def test_the_code_scan_never_reads_through_a_link_the_fleet_user_planted(
    arena: Arena, isolated_env: Path
) -> None:
    secret_dir = arena.root / "root-only"
    secret_dir.mkdir(mode=0o700)
    (secret_dir / "secret.py").write_bytes(
        b'import sys\r\nsys.path.insert(0, "/x")  # pw hunter2\r\n'
    )
    arena.as_fleet_user("ln", "-s", str(secret_dir), str(arena.fleet / "code"))
    arena.as_fleet_user("mkdir", str(arena.fleet / "other"))
    arena.as_fleet_user("ln", "-s", str(secret_dir), str(arena.fleet / "other" / "pkg"))
    isolated_env.write_text(
        f"[fleet]\ncode_roots = ['{arena.fleet / 'code'}', '{arena.fleet / 'other'}']\n"
    )
    res = run_cli("--format", "json", "doctor", "--select", "QT2,QT3")
    assert "hunter2" not in res.stdout + res.stderr
    assert "secret.py" not in res.stdout
    [skipped] = [f for f in json.loads(res.stdout)["findings"] if f["cause"] == "skipped"]
    assert skipped["detail"] == [
        f"{arena.fleet / 'code'}: not scanned: {arena.fleet / 'code'}: code is a symlink in a "
        "folder another user can write; qtctl does not follow it (act on the real path by hand)"
    ]


def test_env_checks_never_read_through_a_planted_link_nor_hang_on_a_fifo(
    arena: Arena, isolated_env: Path
) -> None:
    envs = arena.fleet / "env"
    arena.fleet_file("env/ok.env", b"MODE=paper\n")
    key = arena.root / "key.pem"  # root-only, not an env file at all
    key.write_bytes(b"-----BEGIN PRIVATE KEY-----\nbMt88iVrZoE2bOkX9f7IPytQ\n")
    key.chmod(0o600)
    arena.as_fleet_user("ln", "-s", str(key), str(envs / "k.env"))
    arena.as_fleet_user("mkfifo", str(envs / "pipe.env"))
    isolated_env.write_text(f"[services]\nenv_dirs = ['{envs}']\n[doctor]\ncheck_timeout = 5\n")
    res = subprocess.run(
        [*run_cli_argv(), "--format", "json", "doctor", "--select", "QT703"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert "bMt88iVrZoE2bOkX9f7IPytQ" not in res.stdout + res.stderr
    found = {f["subject"]: f for f in json.loads(res.stdout)["findings"]}
    link = found[str(envs / "k.env")]
    assert (link["cause"], link["severity"]) == ("unsafe-path", "warning")
    assert "symlink" in link["message"]
    assert not [f for f in found.values() if f["code"] == "QT000"]


def test_a_duplicate_is_never_said_about_a_secret_the_guesser_cannot_read(
    arena: Arena, isolated_env: Path
) -> None:
    envs = arena.root / "env"  # root's folder, where the fleet user may drop a file
    envs.mkdir()
    (envs / "exchange.env").write_bytes(b"EXCHANGE_API_KEY=Winter2026!xyz\n")
    (envs / "exchange.env").chmod(0o600)
    guess = envs / "guess.env"
    guess.write_bytes(b"G1_API_KEY=Summer2026!xyz\nG2_API_KEY=Winter2026!xyz\n")
    os.chown(guess, NOBODY.pw_uid, NOBODY.pw_gid)
    guess.chmod(0o600)
    isolated_env.write_text(f"[services]\nenv_dirs = ['{envs}']\n")
    res = run_cli("--format", "json", "doctor", "--select", "QT703")
    causes = [f["cause"] for f in json.loads(res.stdout)["findings"]]
    assert "duplicate-secret" not in causes
    os.chown(guess, 0, 0)  # both root's: a duplicate worth saying
    res = run_cli("--format", "json", "doctor", "--select", "QT703")
    causes = [f["cause"] for f in json.loads(res.stdout)["findings"]]
    assert "duplicate-secret" in causes


def test_a_hard_linked_source_is_left_alone_and_said_so_in_the_preview(
    arena: Arena, isolated_env: Path
) -> None:
    legacy = _code_fleet(arena, isolated_env)
    os.link(arena.victim, legacy.parent / "linked.py")  # what protected_hardlinks=0 allows
    doc = _apply_qt302()
    [repair] = doc["repairs"]  # type: ignore[misc]
    linked = legacy.parent / "linked.py"
    assert repair["manual"] == f"left alone: {linked}: has 2 hard links"
    assert repair["actions"] == [
        f"convert {legacy} to LF (mode and owner kept, original backed up)"
    ]
    assert arena.victim_intact()


def test_a_fifo_planted_where_doctor_reads_never_hangs_it(
    arena: Arena, isolated_env: Path, redis_server: RedisServer
) -> None:
    import redis

    client = redis.Redis.from_url(redis_server.url)
    client.xadd("quantum:stream:trade.execution.res", {"i": "1"})  # a near-miss: code is read
    code = arena.fleet / "code"
    arena.fleet_file("code/bridge.py", b"DEST = 'quantum:stream:trade.execution.result'\n")
    arena.as_fleet_user("mkfifo", str(code / "exit_monitor.py"))
    arena.as_fleet_user("mkfifo", str(code / "watch.sh"))
    isolated_env.write_text(
        f"[fleet]\ncode_roots = ['{code}']\n[doctor]\ncheck_timeout = 10\n"
        f"[redis]\nurl = '{redis_server.url}'\n"
        "[streams]\nexpected = ['trade.execution.result']\n"
    )
    res = subprocess.run(
        [*run_cli_argv(), "--format", "json", "doctor", "--select", "QT2,QT3,QT4"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    findings = json.loads(res.stdout)["findings"]
    assert not [f for f in findings if f["code"] == "QT000"]
    assert [f["cause"] for f in findings if f["code"] == "QT405"] == ["near-miss"]


def test_unit_copies_behind_a_planted_link_are_never_read(arena: Arena, isolated_env: Path) -> None:
    code = arena.fleet / "code"
    arena.fleet_file("code/units/README", b"unit files\n")
    installed = "systemd-journald.service"  # on every host with systemd, read-only here
    arena.as_fleet_user("ln", "-s", str(arena.victim), str(code / "units" / installed))
    isolated_env.write_text(f"[fleet]\ncode_roots = ['{code}']\nunits = ['{installed}']\n")
    res = run_cli("--format", "json", "-v", "doctor", "--select", "QT106")
    assert "secret" not in res.stdout and "19000" not in res.stdout, res.stdout
    assert not [f for f in json.loads(res.stdout)["findings"] if f["code"] == "QT000"]


def test_a_tree_thousands_deep_is_walked_without_crashing_a_check(
    arena: Arena, isolated_env: Path, redis_server: RedisServer
) -> None:
    import redis

    redis.Redis.from_url(redis_server.url).xadd("quantum:stream:trade.execution.res", {"i": "1"})
    code = arena.fleet / "code"
    arena.fleet_file("code/legacy.py", b"import os\r\n")
    fd = os.open(code, os.O_DIRECTORY)
    for _ in range(3000):  # deeper than PATH_MAX allows by name: made through fds
        os.mkdir("d", dir_fd=fd)
        nxt = os.open("d", os.O_DIRECTORY, dir_fd=fd)
        os.close(fd)
        fd = nxt
    os.close(fd)
    isolated_env.write_text(
        f"[fleet]\ncode_roots = ['{code}']\n[redis]\nurl = '{redis_server.url}'\n"
        "[streams]\nexpected = ['trade.execution.result']\n"
    )
    res = run_cli("--format", "json", "doctor", "--select", "QT3,QT4")
    findings = json.loads(res.stdout)["findings"]
    assert not [f for f in findings if f["code"] == "QT000"], res.stdout
    [crlf] = [f for f in findings if f["code"] == "QT302" and f["cause"] == "crlf-sources"]
    assert str(code / "legacy.py") in crlf["detail"]
    [skipped] = [f for f in findings if f["cause"] == "skipped"]
    assert any("deeper than 64 folders: not scanned" in line for line in skipped["detail"])
