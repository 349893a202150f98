"""QT100 / QT400: can doctor reach systemd and Redis at all? Said once, calmly, with the reason."""

from __future__ import annotations

from collections.abc import Iterator

from qtctl.engine.check import Check
from qtctl.engine.context import CheckContext
from qtctl.engine.findings import CodeDoc, Finding, Ref, Severity
from qtctl.engine.refs import redis_ref
from qtctl.errors import AdapterUnavailable

SYSTEMD_UNREACHABLE = CodeDoc(
    code="QT100",
    title="systemd unreachable",
    severity="error",
    meaning="doctor cannot talk to systemd over D-Bus: the host is not booted with systemd as "
    "PID 1 (a container, a CI runner), the system bus is down, or permission was denied.",
    why="Every unit check (QT1xx) and the per-unit code checks are skipped, so the fleet's "
    "units are unverified.",
    fix="Run qtctl on the fleet host itself, as root or a user allowed on the system bus; "
    "check `systemctl is-system-running`; set systemd.bus_address to reach another bus.",
)
REDIS_UNREACHABLE = CodeDoc(
    code="QT400",
    title="Redis unreachable, authentication or TLS failure",
    severity="error",
    meaning="doctor cannot connect to and PING the Redis at redis.url (shown password-masked).",
    why="The fleet talks over Redis Streams: nothing moves, and every QT4xx/QT5xx check is "
    "skipped.",
    fix="Check that redis-server runs (`systemctl status redis-server`), the URL's host/port or "
    "socket path, the password (QTCTL__REDIS__URL), and rediss:// versus redis:// for TLS.",
)


def run_systemd(ctx: CheckContext) -> Iterator[Finding]:
    """One finding when systemd cannot be reached."""
    try:
        ctx.systemd()
    except AdapterUnavailable as exc:
        yield _finding(SYSTEMD_UNREACHABLE, "systemd", exc.reason)


def run_redis(ctx: CheckContext) -> Iterator[Finding]:
    """One finding when Redis cannot be reached."""
    try:
        ctx.redis()
    except AdapterUnavailable as exc:
        yield _finding(REDIS_UNREACHABLE, "redis", exc.reason, redis_ref(ctx.config.redis.url))


def _finding(doc: CodeDoc, subject: str, reason: str, refs: tuple[Ref, ...] = ()) -> Finding:
    return Finding(
        code=doc.code,
        severity=Severity.ERROR,
        subject=subject,
        message=f"{subject} unreachable: {reason}",
        cause="unreachable",
        fix_hint=doc.fix,
        refs=refs,
    )


SYSTEMD_CHECK = Check(name="systemd_reachable", codes=(SYSTEMD_UNREACHABLE,), run=run_systemd)
REDIS_CHECK = Check(name="redis_reachable", codes=(REDIS_UNREACHABLE,), run=run_redis)
