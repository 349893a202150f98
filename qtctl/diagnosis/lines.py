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
    for begin, end in _markers(data):
        number += 1
        yield Line(number, data[start:begin], start)
        start = end
    if start < len(data):
        yield Line(number + 1, data[start:], start)


def line_texts(data: bytes) -> list[bytes]:
    """The content of every line, in order (line N is item N-1): `physical_lines` without the
    bookkeeping, for readers that walk a whole file."""
    if b"\r" in data or b"\0" in data:
        return [line.text for line in physical_lines(data)]
    texts = data.split(b"\n")
    if texts[-1] == b"":
        texts.pop()  # the remainder after the last LF is no line
    return texts


def _markers(data: bytes) -> Iterator[tuple[int, int]]:
    """(start, end) of every end-of-line marker. Files with only LF take the memchr path."""
    if b"\r" in data or b"\0" in data:
        for marker in EOL.finditer(data):
            yield marker.start(), marker.end()
        return
    begin = data.find(b"\n")
    while begin >= 0:
        yield begin, begin + 1
        begin = data.find(b"\n", begin + 1)


class LineIndex:
    """Byte offset -> line number, for parsers that read the whole file at once (env files)."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._starts = [0]
        self._ends: list[int] = []
        for begin, end in _markers(data):
            self._ends.append(begin)
            self._starts.append(end)
        if self._starts[-1] >= len(data) and len(self._starts) > 1:
            self._starts.pop()  # nothing after the last marker: no line there
        else:
            self._ends.append(len(data))

    def number(self, offset: int) -> int:
        """The 1-based number of the line that holds byte `offset`."""
        return bisect.bisect_right(self._starts, offset)

    def text(self, number: int) -> bytes:
        """The content of line `number` (b'' past the end)."""
        if not 0 < number <= len(self._starts):
            return b""
        return self._data[self._starts[number - 1] : self._ends[number - 1]]

    def __len__(self) -> int:
        return len(self._starts) if self._data else 0


def utf8(data: bytes) -> str | None:
    """The text of `data` when systemd's utf8_is_valid() accepts it (no noncharacters)."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if text.isascii() or not any(_nonchar(ord(c)) for c in text if ord(c) >= 0xFDD0):
        return text
    return None


def _nonchar(code: int) -> bool:
    return 0xFDD0 <= code <= 0xFDEF or code & 0xFFFE == 0xFFFE
