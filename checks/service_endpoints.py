"""QT701/QT702: what the fleet's running processes listen on, and whether their health answers."""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Iterator

from qtctl.diagnosis.health_probe import Probe, probe_all
from qtctl.diagnosis.unit_processes import Listener, discover
from qtctl.engine.check import Check
from qtctl.engine.context import CheckContext
from qtctl.engine.facts import UnitFacts
from qtctl.engine.findings import CodeDoc, Finding, Severity
from qtctl.errors import AdapterUnavailable

HEALTH_FAILING = CodeDoc(
    code="QT701",
    title="health endpoint failing",
    severity="error/warning",
    meaning="An active fleet unit's process (MainPID or any child, found by the unit's cgroup) "
    "listens on a TCP port whose first existing health path (services.health_paths: /health, "
    "/healthz, /metrics) answers non-2xx, does not answer within services.probe_timeout_sec, or "
    "answers 2xx with a body that reports an unhealthy status (`status: unhealthy`, `ok: false`; "
    "`degraded` is a warning). Ports that 404 on every path or do not speak HTTP, and units with "
    "no port, are skipped.",
    why="systemd says `active (running)` while the service itself says it cannot work: a "
    "wedged event loop, a lost Redis or exchange connection. Nothing restarts it by itself.",
    fix="Read the unit's journal (`journalctl -u UNIT -n 50`) for the reason; `qtctl fix --apply "
    "--unsafe` restarts it under the same safety rules as QT101 (never protected, masked or "
    "disabled units; in live mode only with --only UNIT).",
    repair=UnitFacts,
)
EXPOSED_LISTENER = CodeDoc(
    code="QT702",
    title="exposed listener",
    severity="warning",
    meaning="A fleet process listens on every interface (0.0.0.0 or ::) or on a non-loopback "
    "address while services.loopback_only is true (the default); services.public_listeners "
    "lists the `unit` or `unit:port` globs allowed to.",
    why="Trading services' admin and health APIs have no authentication: anyone who reaches the "
    "host can call them. An audit of the real fleet found 20+ undocumented listeners on 0.0.0.0.",
    fix='Bind to 127.0.0.1 (uvicorn/gunicorn `--host 127.0.0.1`, Flask `host="127.0.0.1"`), '
    "or fence the unit with a drop-in `[Service]` `IPAddressDeny=any` `IPAddressAllow=localhost`, "
    "`systemctl daemon-reload` and restart it; if it must be public, add it to "
    "services.public_listeners.",
)


def run(ctx: CheckContext) -> Iterator[Finding]:
    """Exposed listeners first (no network needed), then every health endpoint at once."""
    found = discover(ctx)
    settings = ctx.config.services
    if found.hidden and not found.listeners:
        raise AdapterUnavailable(
            "procfs",
            f"the sockets of {found.hidden} fleet process(es) are not visible to uid "
            f"{os.geteuid()} (/proc/PID/fd): run doctor as root for QT701/QT702",
        )
    if settings.loopback_only:
        for listener in found.listeners:
            if not listener.loopback and not _allowed(listener, settings.public_listeners):
                yield _exposed(listener)
    by_target: dict[tuple[str, int], Listener] = {}
    for listener in found.listeners:
        by_target.setdefault((listener.probe_host, listener.port), listener)
    probes = probe_all(
        list(by_target), settings.health_paths, settings.probe_timeout_sec, settings.max_body_bytes
    )
    for target, probe in probes.items():
        if probe.failing:
            yield _failing(by_target[target], probe, settings.probe_timeout_sec)


def _allowed(listener: Listener, patterns: tuple[str, ...]) -> bool:
    names = (listener.unit, f"{listener.unit}:{listener.port}")
    return any(fnmatch.fnmatchcase(n, p) for p in patterns for n in names)


def _exposed(listener: Listener) -> Finding:
    where = "every interface" if listener.wildcard else "a non-loopback address"
    drop_in = f"/etc/systemd/system/{listener.unit}.d/50-qtctl-loopback.conf"
    return Finding(
        EXPOSED_LISTENER.code,
        Severity.WARNING,
        listener.unit,
        f"{listener.process or 'process'} (pid {listener.pid}) listens on "
        f"{listener.endpoint}: {where}",
        cause="wildcard-bind" if listener.wildcard else "public-address",
        detail=(
            f"port: {listener.port}",
            f"process: {listener.process} pid {listener.pid}",
            f"remedy: bind to 127.0.0.1 (e.g. --host 127.0.0.1), or write {drop_in} with "
            "[Service] IPAddressDeny=any IPAddressAllow=localhost, then daemon-reload and "
            f"restart {listener.unit}",
        ),
        fix_hint=EXPOSED_LISTENER.fix,
    )


def _failing(listener: Listener, probe: Probe, timeout: float) -> Finding:
    said = {
        "timeout": f"did not answer within {timeout:g} s ({probe.detail})",
        "http-error": f"answered HTTP {probe.status}",
        "unhealthy-body": f"answered {probe.status} but reports unhealthy: {probe.detail}",
        "degraded": f"answered {probe.status} but reports degraded: {probe.detail}",
        "refused": "refused the connection",
    }.get(probe.outcome, probe.detail)
    detail = [f"url: {probe.url}", f"process: {listener.process} pid {listener.pid}"]
    detail.append(f"probe took {probe.elapsed * 1000:.0f} ms")
    if probe.excerpt:
        detail.append(f"body: {probe.excerpt}")  # redacted with every finding (engine runner)
    return Finding(
        HEALTH_FAILING.code,
        Severity.WARNING if probe.outcome == "degraded" else Severity.ERROR,
        listener.unit,
        f"health endpoint {probe.url} {said}",
        cause=probe.outcome,
        detail=tuple(detail),
        fix_hint=HEALTH_FAILING.fix,
        facts=UnitFacts(listener.unit) if probe.outcome != "degraded" else None,
    )


CHECK = Check(name="service_endpoints", codes=(HEALTH_FAILING, EXPOSED_LISTENER), run=run)
