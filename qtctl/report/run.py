"""`qtctl report` as a library call: one doctor run, rendered, written, published."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from qtctl.adapters.safe_files import private_umask
from qtctl.config import Config
from qtctl.engine.exitcodes import exit_code
from qtctl.errors import AdapterUnavailable, QtctlError
from qtctl.report.collect import HealthReport, collect
from qtctl.report.formats import to_json, to_markdown
from qtctl.report.nagios import Thresholds, to_nagios
from qtctl.report.prometheus import to_prometheus
from qtctl.report.sink import publish, report_lock, write_atomic

log = logging.getLogger(__name__)
FORMATS = ("json", "markdown", "prometheus", "nagios")


@dataclass(frozen=True)
class ReportRequest:
    """What the operator (or cron) asked for."""

    format: str = "json"
    output: str | None = None
    redis_publish: bool = False
    exit_zero: bool = False
    warning: str = "0"  # nagios: range on the warning count
    critical: str = "0"  # nagios: range on the error count


@dataclass(frozen=True)
class ReportResult:
    """The rendered text, where it went, the exit code, and problems that did not stop it."""

    text: str
    exit_code: int
    written_to: str | None
    warnings: tuple[str, ...] = ()


def run_report(config: Config, request: ReportRequest) -> ReportResult:
    """Under the report lock: check, render, write atomically, publish if asked."""
    if request.format not in FORMATS:
        raise QtctlError(f"--format must be one of {', '.join(FORMATS)}, got {request.format!r}")
    thresholds = Thresholds.parse(request.warning, request.critical)
    output = Path(request.output) if request.output else None
    if output:
        _check_writable(output)
    with report_lock(lock_path(output, config.report.lock_dir), config.report.lock_wait_sec):
        health = collect(config)
        text, code = render(health, request.format, config.doctor.fail_on, thresholds)
        if output:
            write_atomic(output, text, int(config.report.output_mode, 8))
        warnings = _publish(config, health) if request.redis_publish else ()
    return ReportResult(
        text, 0 if request.exit_zero else code, str(output) if output else None, warnings
    )


def render(
    health: HealthReport, fmt: str, fail_on: str, thresholds: Thresholds | None = None
) -> tuple[str, int]:
    """The report in one format, with its exit code (Nagios' own for nagios)."""
    if fmt == "nagios":
        return to_nagios(health, thresholds or Thresholds.parse())
    code = exit_code(health.report, fail_on)
    if fmt == "prometheus":
        return to_prometheus(health), code
    if fmt == "markdown":
        return to_markdown(health), code
    return to_json(health), code


def _publish(config: Config, health: HealthReport) -> tuple[str, ...]:
    from qtctl.adapters.redis_client import RedisAdapter
    from qtctl.hosts.publish import this_host_record
    from qtctl.hosts.store import publish_host

    doc = json.loads(to_json(health))
    record = this_host_record(config, doc, health.generated_at)
    try:
        adapter = RedisAdapter.connect(config.redis)
    except AdapterUnavailable as exc:
        return (f"report not published to Redis: {exc.reason}",)
    try:
        with adapter.guard("publishing the report"):
            publish(
                adapter.client,
                config.report.redis_key,
                config.report.redis_stream,
                doc,
                health.report.status,
            )
            publish_host(adapter.client, config.report.redis_key, record)
    except AdapterUnavailable as exc:
        return (f"report not published to Redis: {exc.reason}",)
    finally:
        adapter.close()
    return ()


def lock_path(output: Path | None, lock_dir: str) -> Path:
    """Beside the output when only we can write its folder (node_exporter reads only *.prom),
    else one per output in a folder of our own: never a predictable name in a shared /tmp."""
    if output and not lock_dir and _only_ours(output.absolute().parent):
        return output.with_name(f".{output.name}.lock")
    name = hashlib.sha256(str(output.absolute() if output else "").encode()).hexdigest()[:16]
    folder = Path(lock_dir or _own_runtime_dir())
    with private_umask():
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    if not _only_ours(folder):
        raise QtctlError(f"the report lock folder {folder} is not ours alone (report.lock_dir)")
    return folder / f"report-{name}.lock"


def _own_runtime_dir() -> str:
    if os.geteuid() == 0:
        return "/run/qtctl"
    runtime = os.environ.get("XDG_RUNTIME_DIR", "")
    return f"{runtime}/qtctl" if runtime else os.path.expanduser("~/.cache/qtctl")


def _only_ours(folder: Path) -> bool:
    try:
        info = os.lstat(folder)
    except OSError:
        return False
    loose = info.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
    return stat.S_ISDIR(info.st_mode) and info.st_uid == os.geteuid() and not loose


def _check_writable(output: Path) -> None:
    """Fail before checking anything when the report could not be written anyway."""
    from qtctl.errors import UsageError
    from qtctl.report.sink import not_a_file

    folder = output.parent
    if output.is_dir():
        raise QtctlError(f"--output {output} is a directory; name a file")
    kind = not_a_file(output)
    if kind:
        raise UsageError(f"--output {output} is {kind}; name a regular file")
    if not folder.is_dir():
        raise QtctlError(f"cannot write the report to {output}: {folder} does not exist")
    if not os.access(folder, os.W_OK):
        raise QtctlError(f"cannot write the report to {output}: {folder} is not writable")
