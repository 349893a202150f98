"""The health prober against real loopback servers: hangs, huge and binary bodies, IPv6, junk."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from qtctl.diagnosis.health_probe import body_verdict, probe_all, probe_port
from qtctl.diagnosis.unit_processes import Listener, unit_pids

PATHS = ("/health", "/healthz", "/metrics")
Reply = Callable[[bytes], bytes | None]


@pytest.fixture
def serve() -> Iterator[Callable[..., int]]:
    """Start raw TCP servers answering each request with `reply(request)` (None: hang)."""
    sockets: list[socket.socket] = []

    def start(reply: Reply, host: str = "127.0.0.1") -> int:
        sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
        sock.bind((host, 0))
        sock.listen(64)
        sockets.append(sock)
        threading.Thread(target=_loop, args=(sock, reply), daemon=True).start()
        return int(sock.getsockname()[1])

    yield start
    for sock in sockets:
        sock.close()


def _loop(sock: socket.socket, reply: Reply) -> None:
    held = []
    while True:
        try:
            conn, _ = sock.accept()
        except OSError:
            return
        request = conn.recv(65536)
        answer = reply(request)
        if answer is None:
            held.append(conn)
            continue
        with contextlib.suppress(OSError):
            conn.sendall(answer)
        conn.close()


def http(status: int, body: bytes, headers: str = "") -> bytes:
    head = f"HTTP/1.1 {status} X\r\nContent-Length: {len(body)}\r\n{headers}\r\n"
    return head.encode() + body


def by_path(answers: dict[str, bytes]) -> Reply:
    def reply(request: bytes) -> bytes:
        path = request.split(b" ", 2)[1].decode()
        return answers.get(path, http(404, b"no"))

    return reply


def test_healthy_error_and_unhealthy_bodies(serve: Callable[..., int]) -> None:
    ok = serve(by_path({"/health": http(200, b'{"status": "ok"}')}))
    error = serve(by_path({"/health": http(500, b"boom")}))
    sick = serve(by_path({"/health": http(200, b'{"healthy": false}')}))
    assert probe_port("127.0.0.1", ok, PATHS, 1.0, 4096).outcome == "healthy"
    failing = probe_port("127.0.0.1", error, PATHS, 1.0, 4096)
    assert (failing.outcome, failing.status, failing.excerpt) == ("http-error", 500, "boom")
    assert probe_port("127.0.0.1", sick, PATHS, 1.0, 4096).detail == "healthy=false"


def test_paths_fall_through_404_and_no_endpoint_is_not_a_failure(
    serve: Callable[..., int],
) -> None:
    metrics = serve(by_path({"/metrics": http(200, b"up 1\n")}))
    probe = probe_port("127.0.0.1", metrics, PATHS, 1.0, 4096)
    assert (probe.path, probe.outcome) == ("/metrics", "healthy")
    nothing = probe_port("127.0.0.1", serve(by_path({})), PATHS, 1.0, 4096)
    assert (nothing.outcome, nothing.failing) == ("no-endpoint", False)


def test_huge_binary_body_is_read_only_up_to_the_cap(serve: Callable[..., int]) -> None:
    body = b"\0\xff" * (8 * 2**20)
    port = serve(by_path({"/health": http(200, body)}))
    probe = probe_port("127.0.0.1", port, PATHS, 2.0, 4096)
    assert probe.outcome == "healthy"
    assert probe.excerpt == "<4096 bytes of binary read>"


def test_hang_junk_refused_and_huge_headers(serve: Callable[..., int]) -> None:
    hang = probe_port("127.0.0.1", serve(lambda r: None), PATHS, 0.3, 4096)
    assert (hang.outcome, hang.detail) == ("timeout", "no response within the probe timeout")
    junk = probe_port("127.0.0.1", serve(lambda r: b"-ERR wrong protocol\r\n"), PATHS, 1.0, 4096)
    assert (junk.outcome, junk.failing) == ("not-http", False)
    headers = "".join(f"X-Pad-{i}: {'y' * 200}\r\n" for i in range(200))
    big = probe_port("127.0.0.1", serve(lambda r: http(200, b"{}", headers)), PATHS, 1.0, 4096)
    assert big.outcome == "error" and big.detail == "headers too large or cut off"
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    assert probe_port("127.0.0.1", port, PATHS, 1.0, 4096).outcome == "refused"


def test_chunked_body_is_judged(serve: Callable[..., int]) -> None:
    chunked = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        b'13\r\n{"status":"failed"}\r\n0\r\n\r\n'
    )
    probe = probe_port("127.0.0.1", serve(lambda r: chunked), PATHS, 1.0, 4096)
    assert (probe.outcome, probe.detail) == ("unhealthy-body", "status='failed'")


def test_ipv6_only_listener(serve: Callable[..., int]) -> None:
    port = serve(by_path({"/health": http(503, b"")}), host="::1")
    probe = probe_port("::1", port, PATHS, 1.0, 4096)
    assert (probe.outcome, probe.url) == ("http-error", f"http://[::1]:{port}/health")


def test_many_hanging_ports_cost_one_timeout_not_the_sum(serve: Callable[..., int]) -> None:
    ports = [serve(lambda r: None) for _ in range(30)]
    started = time.monotonic()
    results = probe_all([("127.0.0.1", p) for p in ports], PATHS, 0.5, 4096)
    elapsed = time.monotonic() - started
    assert {r.outcome for r in results.values()} == {"timeout"}
    assert elapsed < 5.0  # the sum of the timeouts would be 15 s


def test_body_verdicts() -> None:
    assert body_verdict(b'{"status": "DEGRADED"}')[0] == "degraded"
    assert body_verdict(b'{"state": "down"}') == ("unhealthy-body", "state='down'")
    assert body_verdict(b"unhealthy: redis lost") == (
        "unhealthy-body",
        "body says 'unhealthy: redis lost'",
    )
    assert body_verdict(b"OK")[0] == "healthy"
    assert body_verdict(b"[1, 2]")[0] == "healthy"
    assert body_verdict(b'{"status": "ok", "checks": {"db": "fail"}}')[0] == "healthy"


def test_unit_pids_skips_vanished_and_odd_proc_entries(tmp_path: Path) -> None:
    proc = tmp_path / "proc"
    for pid, cgroup in {
        "10": "1:name=systemd:/system.slice/quantum-a.service\n0::/x\n",
        "11": "0::/system.slice/quantum-a.service/worker\n",  # v2, a sub-cgroup
        "12": "1:name=systemd:/system.slice/quantum-b.service\n",
        "13": "",  # a kernel thread
        "14": None,  # exited between the listing and the read
        "self": "1:name=systemd:/system.slice/quantum-a.service\n",
    }.items():
        (proc / pid).mkdir(parents=True)
        if cgroup is not None:
            (proc / pid / "cgroup").write_text(cgroup)
    found = unit_pids({"quantum-a.service"}, proc=str(proc))
    assert {k: sorted(v) for k, v in found.items()} == {"quantum-a.service": [10, 11]}
    assert unit_pids({"x"}, proc=str(tmp_path / "missing")) == {}


def test_listener_addresses() -> None:
    v4 = Listener("u", 1, "p", "0.0.0.0", 80)
    v6 = Listener("u", 1, "p", "::", 80)
    mapped = Listener("u", 1, "p", "::ffff:127.0.0.1", 80)
    assert (v4.wildcard, v4.loopback, v4.probe_host) == (True, False, "127.0.0.1")
    assert (v6.probe_host, v6.endpoint) == ("::1", "[::]:80")
    assert mapped.loopback and Listener("u", 1, "p", "::1", 1).loopback
    assert not Listener("u", 1, "p", "10.1.2.3", 1).loopback
