"""Config precedence and validation: defaults < file < QTCTL__SECTION__KEY env < flags."""

from __future__ import annotations

from pathlib import Path

import pytest

from qtctl.config import MOVED, Config, load_config
from qtctl.errors import ConfigError
from tests.conftest import run_cli


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


def test_per_stream_tables_override_the_stream_defaults(tmp_path: Path) -> None:
    from qtctl.stream_limits import limits_for

    path = tmp_path / "c.toml"
    path.write_text(
        "[streams]\nlag_warn = 500\n"
        '[streams.per_stream."trade.closed"]\nlag_warn = 50\nstale_after_sec = 120.5\n'
        'live = true\nproducer = "quantum-executor.service"\ngroups = ["quantum:group:rl"]\n'
    )
    streams = load_config(str(path), env={}).streams
    closed = limits_for(streams, "quantum:stream:trade.closed")
    assert (closed.lag_warn, closed.stale_after_sec, closed.live) == (50, 120.5, True)
    assert (closed.producer, closed.groups) == ("quantum-executor.service", ("quantum:group:rl",))
    other = limits_for(streams, "quantum:stream:trade.intent")
    assert (other.lag_warn, other.live, other.producer) == (500, True, "")
    assert limits_for(streams, "quantum:stream:model.retrain").live is False


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ("lag_wran = 5", 'streams.per_stream."x".lag_wran: unknown per-stream key'),
        ("lag_warn = -5", 'streams.per_stream."x".lag_warn: must be positive'),
        ("lag_warn = 2.5", 'streams.per_stream."x".lag_warn: expected a whole number'),
        ('lag_warn = "many"', 'streams.per_stream."x".lag_warn: expected a number'),
        ("groups = 'g'", 'streams.per_stream."x".groups: expected a list of group names'),
        ("live = 1", 'streams.per_stream."x".live: expected true or false'),
    ],
)
def test_bad_per_stream_values_name_their_key(tmp_path: Path, table: str, message: str) -> None:
    path = tmp_path / "c.toml"
    path.write_text(f'[streams.per_stream."x"]\n{table}\n')
    with pytest.raises(ConfigError) as info:
        load_config(str(path), env={})
    assert message in str(info.value)


def test_every_config_key_is_in_the_config_reference() -> None:
    import dataclasses
    import re

    from tests.conftest import REPO

    readme = (REPO / "docs/reference/config.md").read_text()
    config = Config()
    keys = [
        f"{section.name}.{item.name}"
        for section in dataclasses.fields(config)
        if dataclasses.is_dataclass(getattr(config, section.name))
        for item in dataclasses.fields(getattr(config, section.name))
    ]
    assert len(keys) > 50
    documented = set(re.findall(r"`([a-z_]+\.[a-z_0-9]+)(?:\.\"[A-Z]+\")?`", readme))
    missing = [key for key in keys if key not in documented]
    assert missing == [], "docs/reference/config.md lacks them: run `python -m qtctl.docs_gen`"


@pytest.mark.parametrize(
    ("old", "home"),
    [
        ("daemons.rl_stats_key", "rl.stats_key"),
        ("daemons.rl_rewards_stream", "rl.reward_stream"),
        ("daemons.bridge_routes", "bridge.routes"),
    ],
)
def test_a_removed_key_in_the_file_exits_2_naming_its_new_home(
    isolated_env: Path, old: str, home: str
) -> None:
    section, key = old.split(".")
    isolated_env.write_text(f'[{section}]\n{key} = "x"\n')
    res = run_cli("config", "show")
    assert (res.returncode, res.stdout) == (2, "")
    assert res.stderr.startswith(
        f"qtctl: error: {old}: removed (from file:{isolated_env}); set {home} instead, "
    )
    assert res.stderr.count("\n") == 1, res.stderr


def test_a_removed_key_in_the_environment_exits_2_naming_the_variable() -> None:
    res = run_cli("doctor", env={"QTCTL__DAEMONS__RL_STATS_KEY": "quantum:rl:agent:stats"})
    assert (res.returncode, res.stdout) == (2, "")
    assert res.stderr == (
        "qtctl: error: daemons.rl_stats_key: removed (from env:QTCTL__DAEMONS__RL_STATS_KEY); "
        "set rl.stats_key instead, the hash the RL agent writes and QT502 reads\n"
    )


def test_every_removed_key_points_at_a_key_that_exists() -> None:
    keys = {path for path, _, _ in Config().items()}
    assert {home for home, _ in MOVED.values()} <= keys
    assert not set(MOVED) & keys
