"""QT601-QT603 on this machine, with thresholds set so the real readings trip them."""

from __future__ import annotations

from pathlib import Path

import psutil

from qtctl.config import load_config
from qtctl.doctor import run_doctor
from tests.support.redis_server import RedisServer


def doctor(config: Path, text: str) -> dict:
    config.write_text(text)
    report = run_doctor(load_config(None, flags={"doctor.select": "QT6"}))
    return {f.code: f for f in report.findings}


def test_disk_memory_and_journal_findings_from_real_readings(
    redis_server: RedisServer, tmp_path: Path, isolated_env: Path
) -> None:
    models = tmp_path / "models"
    models.mkdir()
    journal = tmp_path / "journal" / "machine-id"
    journal.mkdir(parents=True)
    (journal / "system.journal").write_bytes(b"\0" * 3 * 2**20)
    found = doctor(
        isolated_env,
        f"[redis]\nurl = '{redis_server.url}'\n"
        f"[host]\ndisk_paths = ['{tmp_path}']\ndisk_warn_pct = 0\ndisk_error_pct = 100\n"
        f"model_dir = '{models}'\nmemory_warn_gib = 100000\nmemory_error_gib = 0\n"
        f"journal_dirs = ['{tmp_path / 'journal'}']\njournal_warn_mb = 2\n",
    )
    assert sorted(found) == ["QT601", "QT602", "QT603"]
    disk = found["QT601"]
    usage = psutil.disk_usage(str(tmp_path))
    assert disk.subject == str(tmp_path) and disk.severity.name == "WARNING"
    assert disk.message.startswith(f"{usage.percent:.1f}% used")
    # Redis told us its data dir; it and the model dir share this file system.
    assert disk.message.endswith(f"holds Redis data dir {redis_server.workdir}, model dir {models}")
    assert found["QT602"].severity.name == "WARNING"
    assert found["QT602"].message.endswith("GiB available (limit 100000 GiB)")
    assert found["QT603"].message == f"3 MiB in {tmp_path / 'journal'} (limit 2 MiB)"


def test_healthy_readings_and_unreadable_paths(tmp_path: Path, isolated_env: Path) -> None:
    found = doctor(
        isolated_env,
        f"[host]\ndisk_paths = ['{tmp_path / 'gone'}']\nmodel_dir = '{tmp_path / 'none'}'\n"
        f"memory_warn_gib = 0\nmemory_error_gib = 0\njournal_dirs = ['{tmp_path}']\n",
    )
    assert list(found) == ["QT601"]
    assert found["QT601"].message == "cannot read disk usage: No such file or directory"
