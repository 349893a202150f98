"""Config precedence and validation: defaults < file < QTCTL__SECTION__KEY env < flags."""

from __future__ import annotations

from pathlib import Path

import pytest

from qtctl.config import Config, load_config
from qtctl.errors import ConfigError


def test_defaults_fit_the_fleet() -> None:
    cfg = load_config(path=None, env={})
    assert cfg.redis.url == "redis://127.0.0.1:6379/0"
    assert cfg.fleet.units == ("quantum-*", "qtctl-*")
    assert "quantum-execution*" in cfg.fleet.protected
    assert cfg.doctor.fail_on == "error"
    assert cfg.sources == {}


def test_precedence(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text(
        '[redis]\nurl = "redis://file:6379/0"\nsocket_timeout = 5\n[doctor]\nfail_on = "info"\n'
    )
    env = {"QTCTL__REDIS__URL": "redis://env:6379/0", "QTCTL__DOCTOR__FAIL_ON": "warning"}
    cfg = load_config(str(path), flags={"doctor.fail_on": "never"}, env=env)
    assert cfg.redis.url == "redis://env:6379/0"
    assert cfg.redis.socket_timeout == 5.0
    assert cfg.doctor.fail_on == "never"
    assert cfg.sources["redis.socket_timeout"] == f"file:{path}"
    assert cfg.sources["redis.url"] == "env:QTCTL__REDIS__URL"
    assert cfg.sources["doctor.fail_on"] == "flag"


def test_config_env_var_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text("[fleet]\nunits = ['trader-*']\nlive_mode = true\n")
    cfg = load_config(None, env={"QTCTL_CONFIG": str(path)})
    assert cfg.fleet.units == ("trader-*",)
    assert cfg.fleet.live_mode is True


def test_missing_default_file_is_fine_but_named_file_is_not(tmp_path: Path) -> None:
    assert isinstance(load_config(None, env={}), Config)
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(None, env={"QTCTL_CONFIG": str(tmp_path / "missing.toml")})


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"QTCTL__DOCTOR__CHECK_TIMEOUT": "-1"}, "doctor.check_timeout: must be at least 0.1"),
        ({"QTCTL__HOST__DISK_WARN_PCT": "150"}, "host.disk_warn_pct: must be at most 100"),
        ({"QTCTL__FLEET__LIVE_MODE": "maybe"}, "fleet.live_mode: expected bool"),
        ({"QTCTL__NOPE__X": "1"}, "nope.x: unknown section"),
        ({"QTCTL__REDIS__URL": "redis://h/abc"}, "redis.url: Redis URL database must be a number"),
    ],
)
def test_invalid_values_name_the_key_path(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace(".", r"\.")):
        load_config(None, env=env)


def test_list_values_from_env_are_comma_separated() -> None:
    cfg = load_config(None, env={"QTCTL__DOCTOR__SELECT": "QT1, QT4"})
    assert cfg.doctor.select == ("QT1", "QT4")


def test_config_is_frozen() -> None:
    cfg = load_config(None, env={})
    with pytest.raises(AttributeError):
        cfg.redis.url = "x"  # type: ignore[misc]
