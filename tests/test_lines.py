"""systemd's read_line, ported: which bytes end a line, by systemd's own table and by property."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from qtctl.diagnosis.lines import EOL, LineIndex, line_texts, physical_lines

PIECES = [b"a", b"b", b"\n", b"\r", b"\0", b"\f", b"\v", b"\x1c", b"\x1e", "\u2028".encode(), b"\\"]


@pytest.mark.parametrize(
    ("data", "lines"),
    [
        (b"a\nb", [b"a", b"b"]),
        (b"a\r\nb\n", [b"a", b"b"]),  # CRLF is one line end
        (b"a\n\rb", [b"a", b"b"]),  # so is LF CR
        (b"a\r\rb", [b"a", b"", b"b"]),  # the same marker twice: two
        (b"a\n\0b", [b"a", b"b"]),  # NUL closes a run
        (b"a\0\nb", [b"a", b"", b"b"]),  # and nothing may follow it in the same end
        (b"a\fb\x1cc\x1e\x85\xe2\x80\xa8d", [b"a\fb\x1cc\x1e\x85\xe2\x80\xa8d"]),  # not line ends
        (b"", []),
        (b"\n", [b""]),
    ],
)
def test_line_ends_as_read_line_full_documents_them(data: bytes, lines: list[bytes]) -> None:
    assert [line.text for line in physical_lines(data)] == lines
    assert line_texts(data) == lines


@given(st.lists(st.sampled_from(PIECES), max_size=40).map(b"".join))
def test_lines_and_markers_rebuild_the_bytes(data: bytes) -> None:
    lines = list(physical_lines(data))
    rebuilt = b""
    following_lines = [*lines[1:], None][: len(lines)]
    for line, following in zip(lines, following_lines, strict=True):
        end = following.start if following else len(data)
        marker = data[line.start + len(line.text) : end]
        assert marker == b"" or EOL.fullmatch(marker)
        rebuilt += line.text + marker
    assert rebuilt == data
    assert all(not set(line.text) & set(b"\n\r\0") for line in lines)
    assert line_texts(data) == [line.text for line in lines]
    index = LineIndex(data)
    assert len(index) == len(lines)
    for line in lines:
        assert index.number(line.start) == line.number
        assert index.text(line.number) == line.text
