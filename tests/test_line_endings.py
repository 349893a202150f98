"""Line-ending conversion as properties, and the code scan on a hostile tree (no sandbox)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from qtctl.diagnosis.code_scan import scan
from qtctl.diagnosis.line_endings import BOM, classify, convert_file, to_lf
from tests.conftest import run_cli


@given(st.binary())
def test_to_lf_changes_only_crlf(data: bytes) -> None:
    if data.startswith(BOM + b"#!"):
        assert to_lf(data) == data[len(BOM) :].replace(b"\r\n", b"\n")
    else:
        assert to_lf(data) == data.replace(b"\r\n", b"\n")
    assert to_lf(to_lf(data)) == to_lf(data)


@given(st.lists(st.sampled_from([b"a", b"\r", b"\n", b"\r\n", b"x y"]), max_size=40))
def test_exactly_one_cr_per_crlf_goes(parts: list[bytes]) -> None:
    data = b"".join(parts)
    out = to_lf(data)
    assert out.count(b"\n") == data.count(b"\n")
    assert data.count(b"\r") - out.count(b"\r") == data.count(b"\r\n")
    if b"\r\r" not in data:
        assert not classify(out).has_crlf


@settings(max_examples=40)
@given(st.binary(min_size=1, max_size=2000), st.sampled_from([0o644, 0o755, 0o700, 0o640]))
def test_convert_file_keeps_mode_owner_and_binaries(
    tmp_path_factory: object, data: bytes, mode: int
) -> None:
    folder = tmp_path_factory.mktemp("conv")  # type: ignore[attr-defined]
    path = folder / "f"
    path.write_bytes(data)
    os.chmod(path, mode)
    os.chown(path, 1234, 2345)
    original = convert_file(str(path))
    info = os.stat(path)
    assert (info.st_mode & 0o7777, info.st_uid, info.st_gid) == (mode, 1234, 2345)
    if b"\0" in data[:8192]:
        assert original is None and path.read_bytes() == data  # binaries are never touched
    elif original is None:
        assert path.read_bytes() == data
    else:
        assert original == data and path.read_bytes() == to_lf(data)
    assert [p.name for p in folder.iterdir()] == ["f"]  # no temporary file left behind


def test_bom_only_before_a_shebang() -> None:
    assert to_lf(BOM + b"#!/bin/sh\n") == b"#!/bin/sh\n"
    assert to_lf(BOM + b"print(1)\r\n") == BOM + b"print(1)\n"


def hostile_tree(root: Path) -> None:
    (root / "pkg").mkdir(parents=True)
    (root / "pkg" / "ok.py").write_bytes(b"import os\n")
    (root / "pkg" / "crlf.py").write_bytes(b"import os\r\nprint(1)\r\n")
    (root / "pkg" / "mixed.sh").write_bytes(b"#!/bin/sh\r\necho a\necho b\n")
    (root / "pkg" / "py2.py").write_bytes(b"print 'hello'\r\n")
    (root / "pkg" / "syntax.py").write_bytes(b"def broken(:\r\n")
    (root / "pkg" / "latin1.py").write_bytes(b"# caf\xe9\r\nx = 1\r\n")
    (root / "pkg" / "notes.txt").write_bytes(b"a\r\nb\r\n")
    (root / "pkg" / "model.bin").write_bytes(b"\x00\x01\r\n" * 100)
    (root / "pkg" / "loop").symlink_to(root / "pkg")
    (root / "pkg" / "fifo").parent.mkdir(exist_ok=True)
    os.mkfifo(root / "pkg" / "fifo")
    with open(root / "pkg" / "huge.py", "wb") as handle:
        handle.write(b"x = 1\r\n" * 20000)  # text at the start, like a runaway log
        handle.truncate(2**30)  # 1 GiB, sparse
    with open(root / "pkg" / "zeros.dat", "wb") as handle:
        handle.truncate(2**30)  # 1 GiB of NUL: binary, recognised from its first bytes
    (root / ".git").mkdir()
    (root / ".git" / "x.py").write_bytes(b"a\r\n")


def test_scan_survives_a_hostile_tree(tmp_path: Path) -> None:
    hostile_tree(tmp_path)
    result = scan([str(tmp_path), str(tmp_path / "missing")], max_bytes=50 * 2**20)
    found = sorted(os.path.basename(f.path) for f in result.crlf)
    assert found == ["crlf.py", "latin1.py", "mixed.sh", "notes.txt", "py2.py", "syntax.py"]
    assert [f.endings.mixed for f in result.crlf if f.path.endswith("mixed.sh")] == [True]
    assert result.skipped == [(str(tmp_path / "pkg" / "huge.py"), "larger than 50 MiB")]
    assert result.missing_roots == [str(tmp_path / "missing")]


def test_doctor_summarises_sources_and_lists_all_in_json(
    tmp_path: Path, isolated_env: Path
) -> None:
    hostile_tree(tmp_path / "code")
    isolated_env.write_text(f"[fleet]\ncode_roots = ['{tmp_path / 'code'}']\n")
    res = run_cli("--format", "json", "doctor", "--select", "QT302")
    findings = {f["cause"]: f for f in json.loads(res.stdout)["findings"]}
    sources = findings["crlf-sources"]
    assert sources["severity"] == "warning"
    assert sources["message"].startswith("5 .py/.sh/unit files with CRLF line endings (1 mixed)")
    assert str(tmp_path / "code" / "pkg" / "crlf.py") in sources["detail"]
    assert findings["crlf-other"]["severity"] == "info"
    assert "larger than 50 MiB" in findings["skipped"]["detail"][0]


def test_qt302_conversion_needs_explicit_selection(tmp_path: Path, isolated_env: Path) -> None:
    code = tmp_path / "code"
    code.mkdir()
    (code / "a.py").write_bytes(b"x = 1\r\n")
    state = tmp_path / "state"
    isolated_env.write_text(f"[fleet]\ncode_roots = ['{code}']\n[fix]\nstate_dir = '{state}'\n")
    held = run_cli("--format", "json", "fix", "--select", "QT3", "--apply")
    [repair] = json.loads(held.stdout)["repairs"]
    assert repair["held"].startswith("converting source files needs --select QT302")
    assert (code / "a.py").read_bytes() == b"x = 1\r\n"


def test_a_configured_root_that_does_not_exist_is_reported(
    tmp_path: Path, isolated_env: Path
) -> None:
    isolated_env.write_text(f"[fleet]\ncode_roots = ['{tmp_path / 'nope'}']\n")
    res = run_cli("--format", "json", "doctor", "--select", "QT302")
    [finding] = json.loads(res.stdout)["findings"]
    assert finding["message"] == "code root does not exist: skipped"
    assert finding["severity"] == "info"


def test_fragile_sys_path_manipulation(tmp_path: Path, isolated_env: Path) -> None:
    code = tmp_path / "code" / "microservices" / "risk"
    code.mkdir(parents=True)
    (code / "main.py").write_text(
        "import os, sys\n"
        "sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))\n"
        "sys.path.append('/app')\n"
        "sys.path.append(r'c:\\quantum_trader')\n"
        f"sys.path.append('{tmp_path}')\n"
        "# sys.path.append('/commented/out')\n"
    )
    isolated_env.write_text(f"[fleet]\ncode_roots = ['{tmp_path / 'code'}']\n")
    res = run_cli("--format", "json", "doctor", "--select", "QT202")
    found = {f["cause"]: f for f in json.loads(res.stdout)["findings"]}
    main = code / "main.py"
    assert found["file-relative"]["detail"] == [
        f"{main}:2: sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))"
    ]
    assert [d.split(" does not exist")[0] for d in found["missing-path"]["detail"]] == [
        f"{main}:3: /app",
        f"{main}:4: c:\\quantum_trader",
    ]
