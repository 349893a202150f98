"""Physical lines as systemd's read_line() splits them (src/basic/fileio.c, read_line_full).

A line ends at `\\n`, `\\r` or NUL, or at a run of them in which each kind appears at most once
and NUL comes last: `\\r\\n`, `\\n\\r`, `\\n\\0`, `\\r\\n\\0` are each one line end, `\\n\\n` and
`\\r\\r` are two. Nothing else ends a line: form feed, vertical tab, `\\x1c`-`\\x1e`, U+0085 and
U+2028/2029 (which `str.splitlines()` breaks on) are ordinary characters. Unit files (config_parse)
and env files share this reader; both work on bytes, as systemd does.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterator
from dataclasses import dataclass

LONG_LINE_MAX = 1 << 20  # read_line(f, LONG_LINE_MAX, ...): a longer line is an error (ENOBUFS)
EOL = re.compile(rb"\n\r?\0?|\r\n?\0?|\0")


@dataclass(frozen=True)
class Line:
    """One physical line: its 1-based number, its content (no end marker) and where it starts."""

    number: int
    text: bytes
    start: int


def physical_lines(data: bytes) -> Iterator[Line]:
    """Every line of `data` in order; a final line without an end marker counts, an empty
    remainder after the last marker does not (read_line returns 0 there: EOF)."""
    number, start = 0, 0
    for marker in EOL.finditer(data):
        number += 1
        yield Line(number, data[start : marker.start()], start)
        start = marker.end()
    if start < len(data):
        yield Line(number + 1, data[start:], start)


class LineIndex:
    """Byte offset -> line number, for parsers that read the whole file at once (env files)."""

    def __init__(self, data: bytes) -> None:
        self._starts = [line.start for line in physical_lines(data)] or [0]
        self._data = data

    def number(self, offset: int) -> int:
        """The 1-based number of the line that holds byte `offset`."""
        return bisect.bisect_right(self._starts, offset)

    def text(self, number: int) -> bytes:
        """The content of line `number` (b'' past the end)."""
        if not 0 < number <= len(self._starts):
            return b""
        start = self._starts[number - 1]
        marker = EOL.search(self._data, start)
        return self._data[start : marker.start() if marker else len(self._data)]

    def __len__(self) -> int:
        return len(self._starts)
