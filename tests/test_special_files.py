"""Root qtctl never replaces a device, FIFO or socket it was asked to write over: a rename over
`/dev/null` would turn the host's /dev/null into a regular file. Tested on nodes made in a temp
folder (a character device with /dev/null's numbers, a FIFO), never on the host's own."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from qtctl.adapters import safe_files
from tests.conftest import run_cli


@pytest.fixture
def nodes(tmp_path: Path) -> dict[str, Path]:
    null = tmp_path / "null"
    os.mknod(null, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    return {"character device": null, "FIFO": fifo}


def test_no_writer_replaces_a_special_file(nodes: dict[str, Path]) -> None:
    for kind, path in nodes.items():
        with pytest.raises(safe_files.UnsafePath, match=kind):
            safe_files.write_file(str(path), b"report")
        assert not stat.S_ISREG(os.lstat(path).st_mode), kind


def test_report_and_baseline_outputs_refuse_a_device(
    nodes: dict[str, Path], tmp_path: Path
) -> None:
    null = nodes["character device"]
    res = run_cli("report", "--format", "json", "--output", str(null))
    assert res.returncode == 2, res.stderr
    assert stat.S_ISCHR(os.lstat(null).st_mode)
    (tmp_path / "repo").mkdir()
    res = run_cli("lint", str(tmp_path / "repo"), "--write-baseline", str(null))
    assert res.returncode != 0 and "Traceback" not in res.stderr, res.stderr
    assert stat.S_ISCHR(os.lstat(null).st_mode)
    assert not list(null.parent.glob(".null*")), "a lock or temp file was left beside it"
