"""`qtctl report` as a library call: one doctor run, rendered, written, published."""

from __future__ import annotations

import json
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from qtctl.config import Config
from qtctl.engine.exitcodes import exit_code
from qtctl.errors import AdapterUnavailable, QtctlError
from qtctl.report.collect import HealthReport, collect
from qtctl.report.formats import to_json, to_markdown, to_nagios, to_prometheus
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
    output = Path(request.output) if request.output else None
    if output:
        _check_writable(output)
    with report_lock(_lock_path(output), config.report.lock_wait_sec):
        health = collect(config)
        text, code = render(health, request.format, config.doctor.fail_on)
        if output:
            write_atomic(output, text)
        warnings = _publish(config, health) if request.redis_publish else ()
    return ReportResult(
        text, 0 if request.exit_zero else code, str(output) if output else None, warnings
    )


def render(health: HealthReport, fmt: str, fail_on: str) -> tuple[str, int]:
    """The report in one format, with its exit code (Nagios' own for nagios)."""
    if fmt == "nagios":
        return to_nagios(health)
    code = exit_code(health.report, fail_on)
    if fmt == "prometheus":
        return to_prometheus(health), code
    if fmt == "markdown":
        return to_markdown(health), code
    return to_json(health), code


def _publish(config: Config, health: HealthReport) -> tuple[str, ...]:
    from qtctl.adapters.redis_client import RedisAdapter

    doc = json.loads(to_json(health))
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
    except AdapterUnavailable as exc:
        return (f"report not published to Redis: {exc.reason}",)
    finally:
        adapter.close()
    return ()


def _lock_path(output: Path | None) -> Path:
    """Beside the output (node_exporter reads only *.prom), else one per user in /tmp."""
    if output:
        return output.with_name(f".{output.name}.lock")
    return Path(tempfile.gettempdir()) / f"qtctl-report-{os.getuid()}.lock"


def _check_writable(output: Path) -> None:
    """Fail before checking anything when the report could not be written anyway."""
    folder = output.parent
    if output.is_dir():
        raise QtctlError(f"--output {output} is a directory; name a file")
    if not folder.is_dir():
        raise QtctlError(f"cannot write the report to {output}: {folder} does not exist")
    if not os.access(folder, os.W_OK):
        raise QtctlError(f"cannot write the report to {output}: {folder} is not writable")
