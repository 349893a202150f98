"""The glue `qtctl report --redis-publish` calls: this host's record for the shared Redis."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from qtctl.config import Config
from qtctl.hosts.record import host_record
from qtctl.hosts.stream_use import stream_use


def this_host_record(config: Config, doc: Mapping[str, Any], generated_at: float) -> dict[str, Any]:
    """The record of the report document about to be published (its streams' use by this
    host's code is scanned here, before any connection is opened)."""
    prefix = config.streams.prefix
    keys = [str(s.get("name", "")) for s in doc.get("streams") or [] if isinstance(s, dict)]
    uses = stream_use(keys, prefix, config.fleet.code_roots)
    return host_record(doc, generated_at, config.report.period_sec, uses, prefix)
