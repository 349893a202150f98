"""Whether systemd 252 accepts a time span (parse_sec) or a calendar event (OnCalendar=).

A timer whose every value systemd rejects has no trigger left, and systemd refuses to load it
("Timer unit lacks value setting"). The calendar check follows systemd.time(7): shortcuts,
`@EPOCH`, and `[WEEKDAYS] [DATE] [TIME] [TIMEZONE]` with `*`, `a..b`, `a/step` and `,` lists
in each field, every number within its field's range. It leans towards accepting.
"""

from __future__ import annotations

import os
import re

TIME_UNITS = (
    *("usec", "us", "µs", "μs", "msec", "ms", "seconds", "second", "sec", "s", "minutes"),
    *("minute", "min", "months", "month", "M", "hours", "hour", "hr", "h", "days", "day", "d"),
    *("weeks", "week", "w", "years", "year", "y", "m"),
)
SPAN = re.compile(
    r"\s*(?:(?:\d+(?:\.\d*)?|\.\d+)\s*(?:"
    + "|".join(sorted(TIME_UNITS, key=len, reverse=True))
    + r")?\s*)+"
)
SHORTCUTS = frozenset(
    {"minutely", "hourly", "daily", "monthly", "weekly", "yearly", "annually", "quarterly"}
    | {"semiannually"}
)
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
LONG_DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
EPOCH_MAX = 253402300799  # 9999-12-31 23:59:59, the last timestamp systemd formats
NUMBER = r"\d+(?:\.\d+)?"
COMPONENT = re.compile(rf"^(\*|{NUMBER})(?:\.\.({NUMBER}))?(?:/({NUMBER}))?$")


def time_span(value: str) -> bool:
    """parse_sec: `infinity`, or numbers with optional units (`1min 30s`, `5`, `2.5h`)."""
    return value.strip() == "infinity" or bool(SPAN.fullmatch(value))


def calendar(value: str) -> bool:
    """Whether calendar_spec_from_string() accepts the value (leaning towards yes)."""
    text = value.strip()
    if text.lower() in SHORTCUTS:
        return True
    if text.startswith("@"):
        return text[1:].isdigit() and int(text[1:]) <= EPOCH_MAX
    words = text.split()
    if words and _is_zone(words[-1]) and len(words) > 1:
        words = words[:-1]
    if words and _weekdays(words[0]):
        words = words[1:]
    dates = [w for w in words if ":" not in w]
    times = [w for w in words if ":" in w]
    if len(dates) > 1 or len(times) > 1 or (words and words[-1] in dates and times):
        return False
    return all(map(_date, dates)) and all(map(_time, times))


def _is_zone(word: str) -> bool:
    return word.upper() == "UTC" or os.path.isfile(os.path.join("/usr/share/zoneinfo", word))


def _weekdays(word: str) -> bool:
    for part in word.split(","):
        ends = part.split("..")
        if len(ends) > 2 or not all(e.lower() in DAYS + LONG_DAYS for e in ends):
            return False
    return bool(word)


def _date(word: str) -> bool:
    head, tilde, last = word.partition("~")
    parts = head.split("-")
    if tilde:
        parts.append(last)
    if len(parts) == 2:
        parts = ["*", *parts]
    limits = [(0, 2199), (1, 12), (1, 31)]
    return len(parts) == 3 and all(
        _field(p, lo, hi) for p, (lo, hi) in zip(parts, limits, strict=True)
    )


def _time(word: str) -> bool:
    parts = word.split(":")
    if len(parts) == 2:
        parts.append("00")
    limits = [(0, 23), (0, 59), (0, 60)]
    return len(parts) == 3 and all(
        _field(p, lo, hi) for p, (lo, hi) in zip(parts, limits, strict=True)
    )


def _field(text: str, low: int, high: int) -> bool:
    """One field: `,`-separated components, each `*`, `n`, `a..b`, `a/step`, `a..b/step`."""
    for component in text.split(","):
        match = COMPONENT.match(component)
        if not match:
            return False
        start, stop, step = match.groups()
        numbers = [float(n) for n in (start, stop) if n and n != "*"]
        if any(not low <= n <= high for n in numbers):
            return False
        if len(numbers) == 2 and numbers[0] > numbers[1]:
            return False
        if step is not None and not 0 < float(step) <= high:
            return False
    return bool(text)
