"""Small phrasings the run-time checks share."""

from __future__ import annotations


def duration(seconds: float) -> str:
    """`90 s`, `67 min`, `1.5 h`, `3.2 days`: whole units up to twice the next one."""
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"
