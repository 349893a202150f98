"""Redis stream entry IDs (`<ms>-<seq>`): the one parser every module compares and dates them by."""

from __future__ import annotations


def order(entry_id: str) -> tuple[int, int]:
    """An entry ID as a sortable (ms, seq) pair; ValueError if it is not one."""
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


def order_or_zero(entry_id: str) -> tuple[int, int]:
    """`order`, with (0, 0), before every real ID, for a value that is not an entry ID."""
    try:
        return order(entry_id)
    except ValueError:
        return 0, 0


def id_ms(entry_id: str) -> int:
    """The millisecond timestamp of an entry ID ('1700000000000-3' -> 1700000000000); 0 if none."""
    # Only the part before the dash: a bad sequence number does not hide a good time.
    return order_or_zero(entry_id.partition("-")[0])[0]
