"""A real redis-server on a free loopback port, owned and killed by pid (never a shared Redis)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class RedisServer:
    """One redis-server process this test session started."""

    port: int
    proc: subprocess.Popen[bytes]
    workdir: Path

    @property
    def url(self) -> str:
        """redis:// URL of db 0."""
        return f"redis://127.0.0.1:{self.port}/0"

    def kill(self) -> None:
        """SIGKILL by pid, keeping its data directory (to restart it from its AOF)."""
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        """SIGKILL by pid, then remove its working directory."""
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
        shutil.rmtree(self.workdir, ignore_errors=True)


def start_redis(
    aof: bool = False,
    password: str | None = None,
    port: int | None = None,
    workdir: Path | None = None,
    extra: tuple[str, ...] = (),
) -> RedisServer:
    """Start redis-server on a free port (no persistence unless `aof`) and wait for PING.

    `port` and `workdir` of a killed server bring it back with its AOF (a Redis restart)."""
    workdir = workdir or Path(tempfile.mkdtemp(prefix="qtctl-test-redis-"))
    port = port or free_port()
    argv = [REDIS_SERVER, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(workdir)]
    argv += ["--save", "", "--appendonly", "yes" if aof else "no", "--daemonize", "no"]
    if password:
        argv += ["--requirepass", password]
    argv += list(extra)
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    server = RedisServer(port, proc, workdir)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            server.stop()
            raise RuntimeError(f"redis-server exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return server
        except OSError:
            time.sleep(0.01)
    server.stop()
    raise RuntimeError("redis-server did not start listening in 10 s")
