"""QT6xx: the host itself: disk space of the paths the fleet lives on, memory, the journal."""

from __future__ import annotations

import os
from collections.abc import Iterator

import psutil

from qtctl.engine.check import Check
from qtctl.engine.context import CheckContext
from qtctl.engine.findings import CodeDoc, Finding, Severity
from qtctl.errors import AdapterUnavailable

DISK_FULL = CodeDoc(
    code="QT601",
    title="file system nearly full",
    severity="warning/error",
    meaning="A path the fleet lives on (host.disk_paths, the Redis data dir from CONFIG GET dir "
    "or host.redis_data_dir, host.model_dir) sits on a file system used at or above "
    "host.disk_warn_pct (warning) or host.disk_error_pct (error).",
    why="A full disk stops Redis persistence (writes fail with MISCONF), journald and model "
    "snapshots; trading daemons then fail in confusing ways.",
    fix="Free space (journalctl --vacuum-size, old logs, model snapshots) or grow the volume.",
)
LOW_MEMORY = CodeDoc(
    code="QT602",
    title="host memory low",
    severity="warning/error",
    meaning="Memory available (MemAvailable) is below host.memory_warn_gib (warning) or "
    "host.memory_error_gib (error).",
    why="The kernel's OOM killer picks the largest process next: often Redis or a model.",
    fix="Find the largest units (systemd-cgtop), cap them with MemoryMax=, or add memory.",
)
JOURNAL_SIZE = CodeDoc(
    code="QT603",
    title="journald disk usage high",
    severity="warning",
    meaning="The journal files (host.journal_dirs) take more than host.journal_warn_mb.",
    why="A crash-looping unit can fill the disk with its journal, and then everything fails.",
    fix="journalctl --vacuum-size=1G, set SystemMaxUse= in journald.conf, fix the noisy unit.",
)


def run(ctx: CheckContext) -> Iterator[Finding]:
    """Disk space, memory available and the journal's size."""
    yield from _disks(ctx)
    yield from _memory(ctx)
    yield from _journal(ctx)


def _disks(ctx: CheckContext) -> Iterator[Finding]:
    settings = ctx.config.host
    paths = [(p, "") for p in settings.disk_paths]
    redis_dir = settings.redis_data_dir or _redis_dir(ctx)
    if redis_dir:
        paths.append((redis_dir, "Redis data dir"))
    if settings.model_dir and os.path.exists(settings.model_dir):
        paths.append((settings.model_dir, "model dir"))
    by_device: dict[int, list[tuple[str, str]]] = {}
    for path, role in paths:
        label = f"{role} {path}" if role else path
        try:
            by_device.setdefault(os.stat(path).st_dev, []).append((path, label))
        except OSError as exc:
            yield _disk(Severity.WARNING, label, f"cannot read disk usage: {exc.strerror}")
    for entries in by_device.values():  # one finding per file system, naming what it holds
        path = entries[0][0]
        usage = psutil.disk_usage(path)
        if usage.percent >= settings.disk_error_pct:
            severity = Severity.ERROR
        elif usage.percent >= settings.disk_warn_pct:
            severity = Severity.WARNING
        else:
            continue
        free_gib = usage.free / 2**30
        others = [label for _, label in entries[1:]]
        holds = f"; holds {', '.join(others)}" if others else ""
        yield _disk(severity, path, f"{usage.percent:.1f}% used, {free_gib:.1f} GiB free{holds}")


def _redis_dir(ctx: CheckContext) -> str:
    """Where Redis persists, asked from Redis itself; empty if it cannot be asked."""
    try:
        adapter = ctx.redis()
        with adapter.guard("CONFIG GET dir"):
            return str(adapter.client.config_get("dir").get("dir", ""))
    except AdapterUnavailable:
        return ""
    except Exception:  # CONFIG may be renamed or denied by ACL on a hardened Redis
        return ""


def _disk(severity: Severity, path: str, message: str) -> Finding:
    return Finding(
        DISK_FULL.code, severity, path, message, cause="disk-usage", fix_hint=DISK_FULL.fix
    )


def _memory(ctx: CheckContext) -> Iterator[Finding]:
    settings = ctx.config.host
    available = psutil.virtual_memory().available / 2**30
    if available < settings.memory_error_gib:
        severity = Severity.ERROR
    elif available < settings.memory_warn_gib:
        severity = Severity.WARNING
    else:
        return
    limit = settings.memory_error_gib if severity is Severity.ERROR else settings.memory_warn_gib
    yield Finding(
        LOW_MEMORY.code,
        severity,
        "memory",
        f"{available:.2f} GiB available (limit {limit:g} GiB)",
        cause="low-memory",
        fix_hint=LOW_MEMORY.fix,
    )


def _journal(ctx: CheckContext) -> Iterator[Finding]:
    settings = ctx.config.host
    total = sum(_tree_size(d) for d in settings.journal_dirs)
    if total / 2**20 > settings.journal_warn_mb:
        yield Finding(
            JOURNAL_SIZE.code,
            Severity.WARNING,
            "journal",
            f"{total / 2**20:.0f} MiB in {', '.join(settings.journal_dirs)} "
            f"(limit {settings.journal_warn_mb:g} MiB)",
            cause="journal-size",
            fix_hint=JOURNAL_SIZE.fix,
        )


def _tree_size(root: str) -> int:
    total = 0
    for folder, _, files in os.walk(root):
        for name in files:
            try:
                total += os.lstat(os.path.join(folder, name)).st_blocks * 512
            except OSError:
                continue
    return total


CHECK = Check(name="host_resources", codes=(DISK_FULL, LOW_MEMORY, JOURNAL_SIZE), run=run)
