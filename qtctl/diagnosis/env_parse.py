"""The state machine of systemd 252's parse_env_file_internal (src/basic/env-file.c), on bytes.

Each state consumes its whole run of ordinary bytes with one regex match, so the cost is linear in
the file and a 50 MB value is one step. Newlines are `\\n` and `\\r`; whitespace is ` \\t\\n\\r`;
a comment starts with `#` or `;` where a key could start and a backslash in it swallows the next
byte (continuing the comment, as systemd < 254 does). An unquoted value loses its trailing
whitespace, but not what an escape protects. Keys and values are checked for UTF-8 only when
pushed, as check_utf8ness_and_warn does.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from qtctl.diagnosis.lines import LineIndex, utf8
from qtctl.errors import QtctlError

READ_FULL_BYTES_MAX = 64 * 1024 * 1024 - 1
SPACE = re.compile(rb"[ \t\n\r]*")
BLANK = re.compile(rb"[ \t]*")
KEY = re.compile(rb"[^\n\r=]*")
VALUE = re.compile(rb"[^\\\n\r]*(?:\\.[^\\\n\r]*)*", re.DOTALL)  # unrolled: one C loop per run
DOUBLE = re.compile(rb'[^"\\]*(?:\\.[^"\\]*)*', re.DOTALL)
SINGLE = re.compile(rb"[^']*")
COMMENT = re.compile(rb"[^\\\n\r]*(?:\\.[^\\\n\r]*)*", re.DOTALL)
ESCAPE = re.compile(rb"\\(.)", re.DOTALL)
SHELL_NEED_ESCAPE = b'"\\`$'


class EnvFileRefused(QtctlError):
    """systemd refuses the whole file (load_env_file fails): the unit cannot start."""

    def __init__(self, reason: str, errno_text: str, line: int = 0) -> None:
        super().__init__(reason)
        self.reason = reason
        self.errno_text = errno_text  # as systemd logs it: "Bad message", "Invalid argument"
        self.line = line


@dataclass
class Parsed:
    """The parse of one file: the pushed assignments (key, value, first and last line)."""

    assignments: list[tuple[str, str, int, int]]
    refused: EnvFileRefused | None
    lines: LineIndex = field(repr=False)
    data: bytes = field(default=b"", repr=False)


def parse(data: bytes) -> Parsed:
    """Every assignment systemd pushes, or why it refuses the file."""
    lines = LineIndex(data)
    found: list[tuple[str, str, int, int]] = []
    if len(data) > READ_FULL_BYTES_MAX:
        refused = EnvFileRefused("the file is larger than 64 MiB", "Argument list too long")
        return Parsed([], refused, lines, data)
    if b"\0" in data:
        line = data.count(b"\n", 0, data.index(b"\0")) + 1  # as an editor counts it
        refused = EnvFileRefused(f"a NUL byte on line {line}", "Bad message", line)
        return Parsed([], refused, lines, data)
    try:
        _Machine(data, lines, found).run()
    except EnvFileRefused as exc:
        return Parsed([], exc, lines, data)
    return Parsed(found, None, lines, data)


class _Machine:
    """PRE_KEY -> KEY -> PRE_VALUE -> (quoted segments) -> VALUE, one regex step per run."""

    def __init__(self, data: bytes, lines: LineIndex, out: list[tuple[str, str, int, int]]):
        self.data, self.lines, self.out = data, lines, out

    def run(self) -> None:
        data, pos, end = self.data, 0, len(self.data)
        while True:
            pos = SPACE.match(data, pos).end()  # type: ignore[union-attr]
            if pos >= end:
                return
            if data[pos] in b"#;":
                pos = self._comment(pos + 1)
                continue
            start = pos  # the first byte is part of the key, even a `=`
            pos = KEY.match(data, pos + 1).end()  # type: ignore[union-attr]
            if pos >= end or data[pos] != ord("="):
                continue  # a newline (or the end) before any `=`: the key is dropped
            key = data[start:pos].rstrip(b" \t\n\r")
            pos = self._value(key, start, pos + 1)

    def _comment(self, pos: int) -> int:
        return COMMENT.match(self.data, pos).end()  # type: ignore[union-attr]

    def _value(self, key: bytes, start: int, pos: int) -> int:
        data, end = self.data, len(self.data)
        parts: list[bytes] = []
        while True:
            pos = BLANK.match(data, pos).end()  # type: ignore[union-attr]
            if pos >= end or data[pos] in b"\n\r":
                self._push(key, b"".join(parts), start, pos)
                return pos
            c = data[pos]
            if c == ord("'"):
                match = SINGLE.match(data, pos + 1)
            elif c == ord('"'):
                match = DOUBLE.match(data, pos + 1)
            else:
                return self._unquoted(key, parts, start, pos)
            assert match is not None
            raw = match.group(0)
            parts.append(raw if c == ord("'") else ESCAPE.sub(_double_escape, raw))
            pos = match.end()
            if pos >= end:  # an unclosed quote runs to the end of the file
                self._push(key, b"".join(parts), start, pos)
                return pos
            pos += 1  # the closing quote

    def _unquoted(self, key: bytes, parts: list[bytes], start: int, pos: int) -> int:
        data, end = self.data, len(self.data)
        match = VALUE.match(data, pos)
        assert match is not None
        raw, stop = match.group(0), match.end()
        trailing_escape = stop < end and data[stop] == ord("\\")  # a backslash at the very end
        cut = _after_last_escape(raw)
        head, tail = (raw[:cut], raw[cut:]) if cut else (b"", raw)
        if not trailing_escape:
            tail = tail.rstrip(b" \t")
        parts.append(ESCAPE.sub(_value_escape, head) + tail if head else tail)
        self._push(key, b"".join(parts), start, stop)
        return stop + (1 if trailing_escape else 0)

    def _push(self, key: bytes, value: bytes, start: int, stop: int) -> None:
        first, last = self.lines.number(start), self.lines.number(stop)
        name = utf8(key)
        if name is None:
            raise EnvFileRefused(
                f"invalid UTF-8 in a key on line {first}", "Invalid argument", first
            )
        text = utf8(value)
        if text is None:
            what = f"invalid UTF-8 in the value of {name} on line {first}"
            raise EnvFileRefused(what, "Invalid argument", first)
        self.out.append((name, text, first, last))


def _double_escape(match: re.Match[bytes]) -> bytes:
    c = match.group(1)
    if c in SHELL_NEED_ESCAPE:
        return c
    return b"" if c == b"\n" else b"\\" + c


def _value_escape(match: re.Match[bytes]) -> bytes:
    c = match.group(1)
    return b"" if c in b"\n\r" else c


def _after_last_escape(raw: bytes) -> int:
    """Where the text after the last `\\X` pair starts (0 without escapes): the whitespace an
    escape protects is never stripped. A run of backslashes pairs up from its left end."""
    last = raw.rfind(b"\\")
    if last < 0:
        return 0
    run = last - len(raw[: last + 1].rstrip(b"\\")) + 1
    return last + (1 if run % 2 == 0 else 2)
