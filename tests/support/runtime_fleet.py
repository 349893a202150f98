"""Fleet units that really run and listen, for the run-time checks (QT701-QT706) in the sandbox.

One stdlib script serves every behaviour: healthy, HTTP 500, hanging, unhealthy body, a huge
binary body, IPv6 only, a child process that listens, a port that is not HTTP.
"""

from __future__ import annotations

from qtctl.sandbox import BoxFile, SandboxSpec

SVC = "/opt/qt-runtime/svc.py"
PY = "/usr/bin/python3"
SERVICE_SCRIPT = r"""
import json, os, socket, sys, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

mode, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
broken = os.path.exists("/var/lib/qt-runtime/broken")  # read once at start: a restart cures it


def raw_server(reply):
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(64)
    held = []
    while True:
        conn, _ = sock.accept()
        if reply:
            conn.sendall(reply)
            conn.close()
        else:
            held.append(conn)  # accept and never answer


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def send(self, status, body, kind="application/json"):
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        try:
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def do_GET(self):
        ok = json.dumps({"status": "ok", "api_key": "sk-live-123456"}).encode()
        if mode == "huge":
            if self.path == "/healthz":
                body = os.urandom(1024) + b"\0" * (20 * 2**20)
                return self.send(200, body, "application/octet-stream")
            return self.send(404, b"{}")
        if mode == "metrics":
            if self.path == "/metrics":
                return self.send(200, b"# HELP up\nup 1\n", "text/plain")
            return self.send(404, b"not found", "text/plain")
        if self.path != "/health":
            return self.send(404, b"{}")
        if mode == "ok":
            return self.send(200, ok)
        if mode == "error":
            return self.send(500, b'{"error": "redis connection lost"}')
        if mode == "unhealthy":
            return self.send(200, b'{"status": "unhealthy", "redis": false}')
        if mode == "degraded":
            return self.send(200, b'{"status": "degraded"}')
        if mode == "flaky":
            return self.send(503 if broken else 200, b'{"status": "starting"}' if broken else ok)
        if mode == "child":
            return self.send(503, b"service unavailable", "text/plain")


class Server(ThreadingHTTPServer):
    address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
    daemon_threads = True


if mode == "hang":
    raw_server(b"")
elif mode == "not-http":
    raw_server(b"-ERR unknown command\r\n")
elif mode == "hog":
    data = b"x" * (int(host) * 2**20)
    time.sleep(3600)
elif mode == "files":
    handles = [open("/dev/null") for _ in range(int(host))]
    time.sleep(3600)
elif mode == "spin":
    while True:
        pass
else:
    Server((host, port), Handler).serve_forever()
"""
CHILD_SCRIPT = f"#!/bin/bash\n{PY} {SVC} child 127.0.0.1 8007 &\nwait\n"

# unit -> (mode, host, port, extra [Service] lines)
SERVICES = {
    "quantum-api-ok.service": ("ok", "127.0.0.1", 8001, ""),
    "quantum-api-error.service": ("error", "127.0.0.1", 8002, ""),
    "quantum-api-hang.service": ("hang", "127.0.0.1", 8003, ""),
    "quantum-api-public.service": ("ok", "0.0.0.0", 8004, ""),
    "quantum-api-v6.service": ("unhealthy", "::1", 8005, ""),
    "quantum-api-huge.service": ("huge", "127.0.0.1", 8006, ""),
    "quantum-api-metrics.service": ("metrics", "127.0.0.1", 8008, ""),
    "quantum-redis-like.service": ("not-http", "127.0.0.1", 8009, ""),
    "quantum-api-flaky.service": ("flaky", "127.0.0.1", 8010, ""),
    "quantum-api-degraded.service": ("degraded", "127.0.0.1", 8011, ""),
    "quantum-api-public6.service": ("ok", "::", 8012, ""),
    "quantum-hog.service": ("hog", "60", 0, "MemoryMax=100M\n"),
    "quantum-fd-hungry.service": ("files", "60", 0, "LimitNOFILE=64\n"),
    "quantum-spinner.service": ("spin", "-", 0, "CPUQuota=20%\n"),
    "quantum-oom.service": ("hog", "100", 0, "MemoryMax=32M\nMemorySwapMax=0\nRestart=no\n"),
}
EXPECTED_QT701 = {
    "quantum-api-error.service": ("http-error", "answered HTTP 500"),
    "quantum-api-hang.service": ("timeout", "did not answer within"),
    "quantum-api-v6.service": ("unhealthy-body", "reports unhealthy: status='unhealthy'"),
    "quantum-api-child.service": ("http-error", "answered HTTP 503"),
    "quantum-api-flaky.service": ("http-error", "answered HTTP 503"),
    "quantum-api-degraded.service": ("degraded", "reports degraded"),
}

EXCHANGE_ENV = (
    "# exchange credentials\n"
    "BINANCE_API_KEY=AKIAEXAMPLEKEY123456\n"
    "BINANCE_API_SECRET=s3cr3t-value-99 # rotated 2026-10\n"
    "export REDIS_PASSWORD=hunter2hunter2\n"
    "TRADING_MODE=paper\n"
)
COPY_ENV = "BINANCE_API_KEY=AKIAEXAMPLEKEY123456\nLOG_LEVEL=info\n"
BROKEN_ENV = 'MODEL_PATH="/models/current\r\nLOG_LEVEL=debug\r\nFEATURES=a,b\r\n'
ENV_UNITS = {
    "quantum-trader-env.service": ("daemon", "/etc/quantum/exchange.env"),
    "quantum-copy-env.service": ("daemon", "/etc/quantum/copy1.env"),
    "quantum-broken-env.service": ("", "/etc/quantum/broken.env"),
    "quantum-missing-env.service": ("", "/etc/quantum/missing.env"),
    "quantum-optional-env.service": ("", "-/etc/quantum/optional.env"),
}


def _unit(mode: str, host: str, port: int, extra: str) -> str:
    return (
        f"[Unit]\nDescription=runtime test {mode}\n\n[Service]\n"
        f"ExecStart={PY} {SVC} {mode} {host} {port}\n{extra}"
    )


def _env_unit(user: str, env_file: str) -> str:
    owner = f"User={user}\n" if user else ""
    return f"[Service]\nExecStart=/bin/sleep 3600\n{owner}EnvironmentFile={env_file}\n"


def runtime_spec() -> SandboxSpec:
    """The box: every SERVICES unit started, env-file units installed but not started."""
    units = {name: _unit(*spec) for name, spec in SERVICES.items()}
    units["quantum-api-child.service"] = "[Service]\nExecStart=/opt/qt-runtime/child.sh\n"
    units["quantum-worker.service"] = "[Service]\nExecStart=/bin/sleep 3600\n"
    units.update({name: _env_unit(*spec) for name, spec in ENV_UNITS.items()})
    files = {
        SVC: BoxFile(SERVICE_SCRIPT),
        "/opt/qt-runtime/child.sh": BoxFile(CHILD_SCRIPT, 0o755),
        "/var/lib/qt-runtime/broken": BoxFile(""),
        "/etc/quantum/exchange.env": BoxFile(EXCHANGE_ENV, 0o644),
        "/etc/quantum/copy1.env": BoxFile(COPY_ENV, 0o600),
        "/etc/quantum/copy2.env": BoxFile(COPY_ENV, 0o600),
        "/etc/quantum/broken.env": BoxFile(BROKEN_ENV, 0o600),
    }
    started = [*SERVICES, "quantum-api-child.service", "quantum-worker.service"]
    return SandboxSpec(units=units, files=files, wants=started)
