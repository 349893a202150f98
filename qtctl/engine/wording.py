"""Small phrasings the run-time checks share."""

from __future__ import annotations

_STEPS = ((1, "s", ".0f"), (60, "min", ".0f"), (3600, "h", ".1f"))  # then days


def duration(seconds: float, *, compact: bool = False) -> str:
    """`90 s`, `67 min`, `1.5 h`, `3.2 days`: whole units up to twice the next one.

    `compact` (the stream checks' wording): `59 s`, `1 min`, `1.0 h`, `1.0 d`, each unit from one
    whole of it."""
    carry = 1 if compact else 2
    for (size, unit, spec), following in zip(_STEPS, (60, 3600, 86400), strict=True):
        if seconds < carry * following:
            return f"{seconds / size:{spec}} {unit}"
    return f"{seconds / 86400:.1f} {'d' if compact else 'days'}"
