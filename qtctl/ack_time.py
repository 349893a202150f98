"""The times of acknowledgements: `--for`/`--until` read, expiries range-checked and printed.

An expiry is epoch seconds the tool can print (up to 9999-12-31 23:59:59 UTC): a value past
that, from a typo or a repository's baseline, is refused where it is read, never stored."""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from typing import Any

from qtctl.errors import UsageError

MAX_EPOCH = 253402300799.0  # 9999-12-31 23:59:59 UTC: the last time datetime can print
DURATION = re.compile(r"^(\d+(?:\.\d+)?)\s*(s|m|min|h|d|w)$")
UNIT_SECONDS = {"s": 1, "m": 60, "min": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> float:
    """Seconds in `90s`, `30m`, `24h`, `7d`, `2w` (an empty value is a mistake, not 'none')."""
    match = DURATION.match(text.strip().lower())
    if not match or float(match.group(1)) <= 0:
        raise UsageError(f"--for expects a duration such as 24h, 30m or 7d, got {text!r}")
    return float(match.group(1)) * UNIT_SECONDS[match.group(2)]


def parse_until(text: str) -> float:
    """An ISO date or date-time (UTC unless it says otherwise) as epoch seconds."""
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise UsageError(
            f"--until expects a date such as 2026-12-31 or 2026-12-31T18:00, got {text!r}"
        ) from None
    return (when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp()


def expiry(start: float, for_: str | None, until: str | None) -> float | None:
    """The expiry `--for`/`--until` give (None: neither given); past or beyond what can be
    printed: a usage error, before anything is written."""
    if for_ is not None and until is not None:
        raise UsageError("give --for or --until, not both")
    if for_ is None and until is None:
        return None
    expires = start + parse_duration(for_) if for_ is not None else parse_until(str(until))
    if expires <= start:
        raise UsageError("--until is in the past")
    if not valid_epoch(expires):
        raise UsageError("the expiry is after 9999-12-31: give a nearer one (or none)")
    return expires


def valid_epoch(value: Any) -> bool:
    """A finite number of seconds from 1970 to 9999-12-31 (JSON has no NaN, Python's reader
    does; a bool is no number)."""
    number = isinstance(value, int | float) and not isinstance(value, bool)
    return number and math.isfinite(value) and 0 <= value <= MAX_EPOCH


def format_time(epoch: float) -> str:
    """`2026-12-03 10:00 UTC` (a time out of range, never stored by qtctl: `epoch N`)."""
    try:
        return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M UTC")
    except (ValueError, OverflowError, OSError):
        return f"epoch {epoch:.0f}"
