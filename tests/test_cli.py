"""The CLI through its public edge: output and exit codes of real invocations."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from qtctl import __version__
from tests.conftest import run_cli
from tests.support.redis_server import RedisServer, free_port


def test_version() -> None:
    res = run_cli("--version")
    assert res.returncode == 0
    assert res.stdout == f"qtctl {__version__}\n"


def test_help_lists_the_command_tree() -> None:
    res = run_cli("--help")
    assert res.returncode == 0
    for command in ("doctor", "fix", "explain", "run", "install", "report", "config"):
        assert command in res.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nope"], "No such command 'nope'"),
        (["doctor", "--bogus"], "--bogus"),
        (["--format", "yaml", "doctor"], "--format must be one of table, json, markdown"),
        (["doctor", "--config", "/nonexistent/qtctl.toml"], "does not exist"),
        (["doctor", "--redis-url", "http://localhost"], "redis.url: Redis URL scheme"),
        (["doctor", "--redis-url", "redis://localhost:99999"], "redis.url:"),
        (["doctor", "--fail-on", "fatal"], "doctor.fail_on: must be one of"),
        (["explain", "QT999"], "unknown check code 'QT999'"),
    ],
)
def test_bad_input_exits_2_with_one_line(args: list[str], message: str) -> None:
    res = run_cli(*args)
    assert res.returncode == 2
    assert res.stdout == ""
    assert res.stderr.count("\n") == 1, res.stderr
    assert res.stderr.startswith("qtctl: error: ")
    assert message in res.stderr
    assert "Traceback" not in res.stderr


def test_doctor_on_a_machine_without_systemd_or_redis_is_calm() -> None:
    """The main job on a dev/CI machine: two clear findings, exit 1, no crash."""
    url = f"redis://:hunter2@127.0.0.1:{free_port()}/0"
    res = run_cli("--format", "json", "doctor", "--redis-url", url)
    assert res.returncode == 1, res.stderr
    assert "Traceback" not in res.stderr
    doc = json.loads(res.stdout)
    codes = {f["code"]: f for f in doc["findings"]}
    assert set(codes) == {"QT100", "QT400"}
    assert "not running as PID 1" in codes["QT100"]["message"]
    assert "Connection refused" in codes["QT400"]["message"]
    assert "hunter2" not in res.stdout
    assert ":****@127.0.0.1" in codes["QT400"]["message"]


def test_doctor_json_schema_is_stable(redis_server: RedisServer) -> None:
    res = run_cli("doctor", "--format", "json", "--redis-url", redis_server.url, "--ignore", "QT1")
    doc = json.loads(res.stdout)
    old = ["schema", "status", "summary", "findings", "skipped", "duration_sec"]
    assert list(doc)[: len(old) + 1] == [*old, "incidents"]  # qtctl.report/2 adds incidents
    assert doc["schema"] == "qtctl.report/2"
    assert set(doc["summary"]) == {"error", "warning", "info", "checks_run", "checks_skipped"}
    for finding in doc["findings"]:
        assert list(finding)[:12] == [  # the report's own keys first; formats may add more
            "code",
            "severity",
            "subject",
            "message",
            "cause",
            "detail",
            "fix_hint",
            "fixable",
            "facts",  # added within qtctl.report/1 (issue 23): old keys kept, in order
            "related",
            "refs",  # qtctl.report/2 (issue 21)
            "id",
        ]
    assert not [f for f in doc["findings"] if f["code"] == "QT400"]


def test_doctor_select_and_fail_on(redis_server: RedisServer) -> None:
    res = run_cli("doctor", "--select", "QT400", "--redis-url", redis_server.url)
    assert res.returncode == 0, res.stdout
    assert "status: ok" in res.stdout
    res = run_cli("doctor", "--select", "QT1", "--fail-on", "never")
    assert res.returncode == 0
    assert "QT100" in res.stdout


def test_doctor_markdown() -> None:
    res = run_cli("doctor", "--format", "markdown", "--select", "QT100")
    assert res.stdout.startswith("# qtctl doctor: critical\n")
    assert "| error | QT100 | systemd |" in res.stdout


def test_env_var_for_every_global_option(redis_server: RedisServer) -> None:
    env = {"QTCTL_FORMAT": "json", "QTCTL_REDIS_URL": redis_server.url, "QTCTL_SELECT": "QT400"}
    res = run_cli("doctor", env=env)
    assert json.loads(res.stdout)["status"] == "ok"


def test_explain_lists_and_documents_codes() -> None:
    listing = run_cli("explain")
    assert "QT000" in listing.stdout and "QT400" in listing.stdout
    res = run_cli("explain", "qt400", "--format", "json")
    doc = json.loads(res.stdout)
    assert doc["code"] == "QT400"
    assert doc["fix"]


def test_config_show_masks_passwords_and_names_sources(isolated_env: Path) -> None:
    isolated_env.write_text('[redis]\nurl = "redis://admin:s3cret@db:6379/2"\n')
    env = {"QTCTL__DOCTOR__FAIL_ON": "warning"}
    res = run_cli("config", "show", "--format", "json", env=env)
    assert res.returncode == 0, res.stderr
    assert "s3cret" not in res.stdout
    doc = json.loads(res.stdout)
    assert doc["redis.url"] == {
        "value": "redis://admin:****@db:6379/2",
        "source": f"file:{isolated_env}",
    }
    assert doc["doctor.fail_on"] == {"value": "warning", "source": "env:QTCTL__DOCTOR__FAIL_ON"}
    assert doc["host.disk_warn_pct"]["source"] == "default"
    table = run_cli("config", "show", "--redis-url", "redis://:pw@h/0")
    assert "redis://:****@h/0" in table.stdout and "flag" in table.stdout


def test_invalid_config_file_names_the_key(isolated_env: Path) -> None:
    isolated_env.write_text("[host]\ndisk_warn_pct = 'lots'\n")
    res = run_cli("doctor")
    assert res.returncode == 2
    assert "host.disk_warn_pct: expected float, got 'lots'" in res.stderr


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"[redis\n", "is not valid TOML"),
        (b"\xff\xfe garbage", "is not UTF-8 text"),
        (b"[redis]\nuri = 'x'\n", "redis.uri: unknown key"),
        (b"redis = 3\n", "expected a [redis] table"),
    ],
)
def test_broken_config_files(isolated_env: Path, content: bytes, message: str) -> None:
    isolated_env.write_bytes(content)
    res = run_cli("config", "show")
    assert res.returncode == 2
    assert message in res.stderr
    assert res.stderr.count("\n") == 1


def test_config_path_that_is_a_directory(tmp_path: Path) -> None:
    res = run_cli("doctor", "--config", str(tmp_path))
    assert res.returncode == 2
    assert "is a directory" in res.stderr


def test_config_show_markdown() -> None:
    res = run_cli("config", "show", "--format", "markdown")
    assert res.stdout.startswith("| key | value | source |\n|---|---|---|\n")
    assert "| fleet.units | `quantum-*, qtctl-*` | default |" in res.stdout


def test_checks_needing_an_unreachable_backend_are_skipped_in_one_line() -> None:
    # wide enough that the console does not wrap the line; stale_code needs systemd: a unit's
    # process start time (ExecMainStartTimestamp) is its whole evidence
    url = f"redis://127.0.0.1:{free_port()}/0"
    res = run_cli("doctor", "--redis-url", url, env={"COLUMNS": "200"})
    units = "systemd_units, stale_code, unit_files, service_endpoints, unit_resources"
    assert f"skipped (systemd unreachable): {units}\n" in res.stdout
    assert res.stdout.count("QT100") == 1


def test_verbosity_from_the_environment() -> None:
    res = run_cli("doctor", "--select", "QT100", env={"QTCTL_QUIET": "1"})
    assert res.returncode == 1 and "QT100" in res.stdout


def test_run_lists_daemons_and_refuses_unknown_ones() -> None:
    listed = run_cli("run", "--list")
    assert listed.returncode == 0 and listed.stdout.startswith("bridge ")
    res = run_cli("run", "nope")
    assert res.returncode == 2
    known = "known: bridge, risk-kernel, rl-agent (qtctl run --list)"
    assert f"unknown daemon 'nope'; {known}" in res.stderr
    assert run_cli("run").returncode == 2


def test_every_command_and_option_is_in_the_cli_reference() -> None:
    import re

    import click
    import typer

    from qtctl.cli.app import app
    from tests.conftest import REPO

    readme = (REPO / "docs/reference/cli.md").read_text()
    missing: list[str] = []

    def walk(command: click.Command, path: str) -> None:
        for param in command.params:
            names = [o for o in getattr(param, "opts", []) if o.startswith("-")]
            documented = any(
                re.search(rf"(?<![\w-]){re.escape(o)}(?![\w-])", readme)
                for o in names
            )
            if names and names != ["--help"] and not documented:
                missing.append(f"{path} {names[0]}")
        if isinstance(command, click.Group):
            for name, sub in command.commands.items():
                if f"qtctl {path[6:]} {name}".replace("  ", " ") not in readme:
                    missing.append(f"{path} {name}")
                walk(sub, f"{path} {name}")

    walk(typer.main.get_command(app), "qtctl")
    assert missing == [], "docs/reference/cli.md lacks them: run `python -m qtctl.docs_gen`"
