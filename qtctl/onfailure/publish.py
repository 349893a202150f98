"""Publish one unit's incident: an entry on `report.incident_stream` (capped) for whatever the
fleet's alerting reads, and one line on stderr, which under the notify unit is the journal."""

from __future__ import annotations

import json
import socket
import time

from qtctl.adapters.redis_client import RedisAdapter
from qtctl.config import Config
from qtctl.engine.report import Report
from qtctl.errors import AdapterUnavailable
from qtctl.onfailure.scope import root_of
from qtctl.onfailure.trigger import Trigger
from qtctl.redaction import DEFAULT as REDACT

STREAM_MAXLEN = 10_000
MAX_REPORT_BYTES = 256 * 1024


def incident_fields(unit: str, report: Report, trigger: Trigger) -> dict[str, str]:
    """The stream entry: the unit diagnosed (`--unit`; a differing MONITOR_UNIT is kept as
    `monitor_unit`), what systemd said, the root finding, the unit's report."""
    root = root_of(report)
    doc = json.dumps(report.as_dict(), separators=(",", ":"))
    monitored = trigger.as_dict()
    said = monitored.pop("unit")  # the diagnosis is of `unit`: it is what is published
    return {
        **monitored,
        "unit": unit,
        "monitor_unit": said if said and said != unit else "",
        "host": socket.gethostname(),
        "at": f"{time.time():.3f}",
        "status": report.status,
        "root_code": root.code if root else "",
        "root_subject": root.subject if root else "",
        "root_message": REDACT.shown(root.message) if root else "",
        "findings": str(len(report.findings)),
        "report": doc if len(doc) <= MAX_REPORT_BYTES else "",
    }


def headline(fields: dict[str, str]) -> str:
    """The journal line."""
    why = f"{fields['root_code']} {fields['root_message']}" if fields["root_code"] else "no cause"
    how = f" ({fields['result']}, status {fields['exit_status']})" if fields["result"] else ""
    return REDACT.shown(f"incident on {fields['unit']}{how}: {why}")


def publish_incident(config: Config, fields: dict[str, str]) -> str:
    """XADD the entry; '' on success, else why it was not published (Redis may be the cause)."""
    try:
        adapter = RedisAdapter.connect(config.redis)
    except AdapterUnavailable as exc:
        return f"incident not published to Redis: {exc.reason}"
    try:
        with adapter.guard("publishing the incident"):
            adapter.client.xadd(
                config.report.incident_stream, fields, maxlen=STREAM_MAXLEN, approximate=True
            )
    except AdapterUnavailable as exc:
        return f"incident not published to Redis: {exc.reason}"
    finally:
        adapter.close()
    return ""
