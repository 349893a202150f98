"""QT9xx: the host itself (disk space)."""

from __future__ import annotations

from collections.abc import Iterator

import psutil

from qtctl.engine.check import Check
from qtctl.engine.context import CheckContext
from qtctl.engine.findings import CodeDoc, Finding, Severity

DISK_FULL = CodeDoc(
    code="QT901",
    title="file system nearly full",
    severity="warning/error",
    meaning="A configured path (host.disk_paths) sits on a file system used at or above "
    "host.disk_warn_pct (warning) or host.disk_error_pct (error).",
    why="A full disk stops Redis persistence, journald and the services' own logs; trading "
    "daemons then fail in confusing ways.",
    fix="Free space (journalctl --vacuum-size, old logs, model snapshots) or grow the volume.",
)


def run(ctx: CheckContext) -> Iterator[Finding]:
    """Report each configured path whose file system is fuller than the thresholds."""
    settings = ctx.config.host
    for path in settings.disk_paths:
        try:
            usage = psutil.disk_usage(path)
        except OSError as exc:
            yield _finding(Severity.WARNING, path, f"cannot read disk usage: {exc.strerror}")
            continue
        if usage.percent >= settings.disk_error_pct:
            severity = Severity.ERROR
        elif usage.percent >= settings.disk_warn_pct:
            severity = Severity.WARNING
        else:
            continue
        free_gib = usage.free / 2**30
        yield _finding(severity, path, f"{usage.percent:.1f}% used, {free_gib:.1f} GiB free")


def _finding(severity: Severity, path: str, message: str) -> Finding:
    return Finding(
        DISK_FULL.code, severity, path, message, cause="disk-usage", fix_hint=DISK_FULL.fix
    )


CHECK = Check(name="host_resources", codes=(DISK_FULL,), run=run)
