"""Probe HTTP health endpoints concurrently, each port within one deadline, bodies capped.

A raw HTTP/1.0 GET over a socket: the deadline covers connect, request and response together,
at most `max_body` bytes of a body are read (a 1 GB or binary body costs nothing), and a port
that does not speak HTTP is told apart from one that hangs.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import socket
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from qtctl.diagnosis.unit_processes import family
from qtctl.redaction import DEFAULT

UNHEALTHY_WORDS = frozenset(
    {"unhealthy", "error", "fail", "failed", "failing", "down", "critical", "dead", "not ok"}
)
DEGRADED_WORDS = frozenset({"degraded", "warn", "warning"})
STATUS_FIELDS = ("status", "state", "health")
BOOL_FIELDS = ("healthy", "ok", "alive", "ready")
MAX_HEADER_BYTES = 16384
MAX_WORKERS = 64


@dataclass(frozen=True)
class Probe:
    """What one port answered on the first health path that exists there."""

    host: str
    port: int
    path: str
    outcome: str  # healthy, degraded, unhealthy-body, http-error, timeout, refused, not-http,
    #               no-endpoint, error
    status: int = 0
    detail: str = ""
    elapsed: float = 0.0
    excerpt: str = ""

    @property
    def url(self) -> str:
        """The URL probed."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}{self.path}"

    @property
    def failing(self) -> bool:
        """Whether this is a health problem (a port with no health path or no HTTP is not)."""
        return self.outcome not in ("healthy", "no-endpoint", "not-http")


def probe_all(
    targets: Sequence[tuple[str, int]], paths: Sequence[str], timeout: float, max_body: int
) -> dict[tuple[str, int], Probe]:
    """Probe every (host, port) at once; the whole run takes about one timeout, not the sum."""
    if not targets:
        return {}
    unique = list(dict.fromkeys(targets))
    with ThreadPoolExecutor(max_workers=min(MAX_WORKERS, len(unique))) as pool:
        results = pool.map(lambda t: probe_port(t[0], t[1], paths, timeout, max_body), unique)
        return dict(zip(unique, results, strict=True))


def probe_port(host: str, port: int, paths: Sequence[str], timeout: float, max_body: int) -> Probe:
    """Try each health path in turn (404 moves to the next) until the port's deadline."""
    started = time.monotonic()
    deadline = started + timeout
    last = Probe(host, port, paths[0] if paths else "/", "no-endpoint")
    for path in paths:
        last = _get(host, port, path, deadline, max_body)
        if last.outcome != "http-error" or last.status not in (404, 405):
            break
        last = Probe(host, port, path, "no-endpoint", last.status)
    return dataclasses.replace(last, elapsed=time.monotonic() - started)


def _get(host: str, port: int, path: str, deadline: float, max_body: int) -> Probe:
    request = (
        f"GET {path} HTTP/1.0\r\nHost: {host}:{port}\r\nUser-Agent: qtctl-doctor\r\n"
        "Accept: application/json, text/plain, */*\r\nConnection: close\r\n\r\n"
    ).encode()
    stage = "connection"
    try:
        with socket.socket(family(host), socket.SOCK_STREAM) as sock:
            sock.settimeout(max(0.001, deadline - time.monotonic()))
            sock.connect((host, port))
            stage = "response"
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                sock.sendall(request)  # a server that speaks first may close before reading
            raw = _read(sock, deadline, max_body)
    except TimeoutError:
        return Probe(host, port, path, "timeout", detail=f"no {stage} within the probe timeout")
    except ConnectionRefusedError:
        return Probe(host, port, path, "refused", detail="connection refused")
    except OSError as exc:
        return Probe(host, port, path, "error", detail=exc.strerror or str(exc))
    return judge(host, port, path, raw, max_body)


def _read(sock: socket.socket, deadline: float, max_body: int) -> bytes:
    """Headers plus at most max_body bytes of body, or raise TimeoutError at the deadline."""
    data = bytearray()
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError
        sock.settimeout(left)
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            if not data:
                raise
            chunk = b""
        if not chunk:
            return bytes(data)
        data += chunk
        head_end = data.find(b"\r\n\r\n")
        if head_end >= 0 and len(data) - head_end - 4 >= max_body:
            return bytes(data[: head_end + 4 + max_body])
        if head_end < 0 and len(data) > MAX_HEADER_BYTES:
            return bytes(data)


def judge(host: str, port: int, path: str, raw: bytes, max_body: int) -> Probe:
    """Classify a raw response: status line, then what the body says about health."""
    head, sep, body = raw.partition(b"\r\n\r\n")
    status_line = head.split(b"\r\n", 1)[0]
    parts = status_line.split(None, 2)
    if not raw.startswith(b"HTTP/") or len(parts) < 2 or not parts[1].isdigit():
        return Probe(host, port, path, "not-http", detail="the port does not answer HTTP")
    status = int(parts[1])
    if not sep or len(head) > MAX_HEADER_BYTES:
        return Probe(host, port, path, "error", status, "headers too large or cut off")
    if b"chunked" in head.lower():
        body = _dechunk(body)
    excerpt = _excerpt(body[:max_body])
    if not 200 <= status < 300:
        return Probe(host, port, path, "http-error", status, f"HTTP {status}", excerpt=excerpt)
    verdict, said = body_verdict(body[:max_body])
    return Probe(host, port, path, verdict, status, said, excerpt=excerpt)


def body_verdict(body: bytes) -> tuple[str, str]:
    """healthy / degraded / unhealthy-body, and the words that decided it."""
    text = body.decode("utf-8", "replace").strip()
    try:
        doc = json.loads(text)
    except ValueError:
        word = text.lower().split("\n", 1)[0].strip().rstrip(".!")
        if word in UNHEALTHY_WORDS or word.startswith("unhealthy"):
            return "unhealthy-body", f"body says {word!r}"
        return "healthy", ""
    if not isinstance(doc, dict):
        return "healthy", ""
    for name in STATUS_FIELDS:
        value = doc.get(name)
        if isinstance(value, str) and value.strip().lower() in UNHEALTHY_WORDS:
            return "unhealthy-body", f"{name}={value!r}"
        if isinstance(value, str) and value.strip().lower() in DEGRADED_WORDS:
            return "degraded", f"{name}={value!r}"
        if value is False:
            return "unhealthy-body", f"{name}=false"
    for name in BOOL_FIELDS:
        if doc.get(name) is False:
            return "unhealthy-body", f"{name}=false"
    return "healthy", ""


def _dechunk(body: bytes) -> bytes:
    out = bytearray()
    rest = body
    while rest:
        size_line, sep, rest = rest.partition(b"\r\n")
        try:
            size = int(size_line.split(b";")[0].strip() or b"0", 16)
        except ValueError:
            return bytes(out or body)
        if size == 0 or not sep:
            break
        out += rest[:size]
        rest = rest[size + 2 :]
    return bytes(out)


def _excerpt(body: bytes, limit: int = 160) -> str:
    """A printable start of the body (binary shown as its size only)."""
    if b"\0" in body[:512]:
        return f"<{len(body)} bytes of binary read>"
    text = body.decode("utf-8", "replace")
    printable = "".join(c if c.isprintable() else " " for c in text).strip()
    printable = DEFAULT.text(printable)  # before the cut: a cut secret no longer looks like one
    return printable[:limit] + ("..." if len(printable) > limit else "")
