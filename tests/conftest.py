"""Fixtures: a real redis-server, a real systemd sandbox, and an isolated CLI environment."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from qtctl.sandbox import Sandbox, SandboxSpec
from tests.support.redis_server import RedisServer, start_redis

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No color, fixed width, no QTCTL_* leaking in, and an empty temp config file."""
    for name in list(os.environ):
        if name.startswith("QTCTL"):
            monkeypatch.delenv(name)
    config = tmp_path / "qtctl.toml"
    config.write_text("")
    monkeypatch.setenv("QTCTL_CONFIG", str(config))
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("COLUMNS", "200")
    return config


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    """A fresh redis-server on a free loopback port, killed by pid afterwards."""
    server = start_redis()
    yield server
    server.stop()


@pytest.fixture
def redis_factory() -> Iterator[Callable[..., RedisServer]]:
    """Start redis-servers with options (aof=True, password=...); all are killed afterwards."""
    started: list[RedisServer] = []

    def make(**kwargs: object) -> RedisServer:
        server = start_redis(**kwargs)  # type: ignore[arg-type]
        started.append(server)
        return server

    yield make
    for server in started:
        server.stop()


@pytest.fixture
def sandbox() -> Iterator[Callable[[SandboxSpec], Sandbox]]:
    """Boot real systemd sandboxes from specs; every one is torn down, even on failure."""
    boxes: list[Sandbox] = []

    def boot(spec: SandboxSpec) -> Sandbox:
        box = Sandbox(spec)
        boxes.append(box)
        return box.boot()

    yield boot
    for box in boxes:
        box.close()


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run `python -m qtctl ARGS` as a user would, in a subprocess."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "qtctl", *args],
        capture_output=True,
        text=True,
        env=full_env,
        cwd=REPO,
        timeout=120,
    )
