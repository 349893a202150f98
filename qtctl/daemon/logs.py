"""Daemon logs on stderr: no timestamps (journald adds them), text or JSON lines."""

from __future__ import annotations

import json
import logging
import os
import sys

from qtctl.redaction import LogRedaction

# syslog priorities, understood by journald as a `<N>` prefix on each stderr line
PRIORITY = {
    logging.DEBUG: 7,
    logging.INFO: 6,
    logging.WARNING: 4,
    logging.ERROR: 3,
    logging.CRITICAL: 2,
}
RESERVED = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


class TextFormatter(logging.Formatter):
    """`LEVEL logger: message key=value ...`, with a `<N>` prefix under journald."""

    def __init__(self, journald: bool) -> None:
        super().__init__()
        self.journald = journald

    def format(self, record: logging.LogRecord) -> str:
        """One line (tracebacks follow on their own lines)."""
        extra = " ".join(f"{k}={v}" for k, v in _extra(record).items())
        line = f"{record.levelname} {record.name}: {record.getMessage()}"
        line += f" {extra}" if extra else ""
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        if self.journald:
            prefix = f"<{PRIORITY.get(record.levelno, 6)}>"
            line = "\n".join(prefix + part for part in line.split("\n"))
        return line


class JsonFormatter(logging.Formatter):
    """One JSON object per line: level, logger, message and any extra fields."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as JSON."""
        doc: dict[str, object] = {"level": record.levelname.lower(), "logger": record.name}
        doc["message"] = record.getMessage()
        doc.update(_extra(record))
        if record.exc_info:
            doc["exception"] = self.formatException(record.exc_info)
        return json.dumps(doc, default=str)


def _extra(record: logging.LogRecord) -> dict[str, object]:
    return {k: v for k, v in vars(record).items() if k not in RESERVED and not k.startswith("_")}


def setup_logging(fmt: str = "text", level: int = logging.INFO) -> None:
    """Route every logger to stderr in the chosen format (replaces earlier handlers)."""
    handler = logging.StreamHandler(sys.stderr)
    journald = bool(os.environ.get("JOURNAL_STREAM"))
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter(journald))
    handler.addFilter(LogRedaction())  # the journal is output too: secrets masked
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
