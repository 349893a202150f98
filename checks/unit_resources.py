"""QT706: fleet units close to their own limits: memory, CPU quota, open files, OOM kills."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import psutil

from qtctl.diagnosis.fleet import FleetUnit, fleet_units, limit_set, recent_oom_kills
from qtctl.diagnosis.unit_processes import discover
from qtctl.engine.check import Check
from qtctl.engine.context import CheckContext
from qtctl.engine.findings import CodeDoc, Finding, Severity

RESOURCE_PRESSURE = CodeDoc(
    code="QT706",
    title="unit resource pressure",
    severity="warning",
    meaning="An active fleet unit's processes use services.memory_warn_pct of its MemoryMax= "
    "(summed RSS), services.cpu_warn_pct of its CPUQuota= (sampled over "
    "services.cpu_sample_sec), or services.nofile_warn_pct of a process's open-file limit; or "
    "the kernel log shows OOM kills of a fleet unit within systemd.flap_window_sec. Host memory "
    "and disk are QT602 and QT601 (warn at 80 %, error at 90 % disk; warn below 2 GiB, error "
    "below 0.5 GiB available).",
    why="At MemoryMax the kernel OOM-kills the service mid-trade; at its CPU quota it is "
    "throttled and falls behind its streams; at the file limit it cannot open sockets.",
    fix="Find the leak or raise the limit with a drop-in (`[Service]` MemoryMax=, CPUQuota=, "
    "LimitNOFILE=), `systemctl daemon-reload`, restart the unit in a quiet moment.",
)


@dataclass(frozen=True)
class Usage:
    """What one unit's processes use now."""

    rss: int
    fds: tuple[tuple[int, int, int], ...]  # (pid, open, soft limit)
    cpu: float  # seconds of CPU so far, all processes


def run(ctx: CheckContext) -> Iterator[Finding]:
    """Memory, CPU and file-descriptor pressure per unit, then recent OOM kills."""
    settings = ctx.config.services
    found = discover(ctx)
    before = {u.name: _usage(found.pids.get(u.name, [])) for u in found.units}
    quota_units = [u for u in found.units if _quota(u) and u.name in found.pids]
    cpu = _cpu_percent(quota_units, found.pids, before, settings.cpu_sample_sec)
    for unit in found.units:
        usage = before[unit.name]
        yield from _memory(unit, usage, settings.memory_warn_pct)
        if unit.name in cpu:
            yield from _cpu(unit, cpu[unit.name], settings.cpu_warn_pct)
        yield from _files(unit, usage, settings.nofile_warn_pct)
    yield from _oom(ctx)


def _usage(pids: Sequence[int]) -> Usage:
    rss, cpu, fds = 0, 0.0, []
    for pid in pids:
        try:
            proc = psutil.Process(pid)
            with proc.oneshot():
                rss += proc.memory_info().rss
                times = proc.cpu_times()
                cpu += times.user + times.system
                soft = proc.rlimit(psutil.RLIMIT_NOFILE)[0]
                fds.append((pid, proc.num_fds(), soft))
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue  # gone during the scan, or not ours to read
    return Usage(rss, tuple(fds), cpu)


def _limit(unit: FleetUnit, name: str) -> int:
    """A resource-control property's value, 0 when unset (infinity)."""
    value = unit.props.get(name)
    return int(value) if value is not None and limit_set(value) else 0


def _quota(unit: FleetUnit) -> int:
    return _limit(unit, "CPUQuotaPerSecUSec")


def _cpu_percent(
    units: Sequence[FleetUnit], pids: dict[str, list[int]], before: dict[str, Usage], window: float
) -> dict[str, float]:
    """Percent of one CPU per unit over one shared sample (one sleep for all units)."""
    if not units or window <= 0:
        return {}
    started = time.monotonic()
    time.sleep(window)
    elapsed = time.monotonic() - started
    return {
        u.name: 100 * max(0.0, _usage(pids[u.name]).cpu - before[u.name].cpu) / elapsed
        for u in units
    }


def _memory(unit: FleetUnit, usage: Usage, warn_pct: float) -> Iterator[Finding]:
    limit = _limit(unit, "MemoryMax")
    if not limit or not usage.rss:
        return
    share = 100 * usage.rss / limit
    if share >= warn_pct:
        yield _finding(
            unit.name,
            f"memory {_mib(usage.rss)} RSS is {share:.0f} % of MemoryMax={_mib(limit)}",
            "memory-near-max",
            f"the kernel OOM-kills it at {_mib(limit)}",
        )


def _cpu(unit: FleetUnit, percent: float, warn_pct: float) -> Iterator[Finding]:
    quota = _quota(unit) / 10_000  # µs per s -> percent of one CPU
    if quota and percent >= quota * warn_pct / 100:
        yield _finding(
            unit.name,
            f"CPU {percent:.0f} % of one core against CPUQuota={quota:g}%",
            "cpu-near-quota",
            "the kernel throttles it at its quota: it falls behind its streams",
        )


def _files(unit: FleetUnit, usage: Usage, warn_pct: float) -> Iterator[Finding]:
    for pid, count, soft in usage.fds:
        if soft > 0 and soft != psutil.RLIM_INFINITY and 100 * count / soft >= warn_pct:
            yield _finding(
                unit.name,
                f"pid {pid} has {count} open files of its limit {soft} (LimitNOFILE=)",
                "nofile-near-limit",
                "at the limit it cannot accept connections or open files (EMFILE)",
            )


def _oom(ctx: CheckContext) -> Iterator[Finding]:
    kills = recent_oom_kills(ctx)
    names = {u.name for u in fleet_units(ctx)}
    window = ctx.config.systemd.flap_window_sec
    for unit, count in sorted(kills.items()):
        if unit in names:
            yield _finding(
                unit,
                f"{count} kernel OOM kill(s) in the last {window / 60:.0f} min",
                "oom-kill",
                "the kernel log names this unit's cgroup (`journalctl -k -g oom`)",
            )


def _finding(unit: str, message: str, cause: str, why: str) -> Finding:
    return Finding(
        RESOURCE_PRESSURE.code,
        Severity.WARNING,
        unit,
        message,
        cause=cause,
        detail=(why,),
        fix_hint=RESOURCE_PRESSURE.fix,
    )


def _mib(size: int) -> str:
    return f"{size / 2**20:.0f} MiB"


CHECK = Check(name="unit_resources", codes=(RESOURCE_PRESSURE,), run=run)
