"""Line endings: classify file bytes, and convert CRLF to LF byte-exactly and atomically."""

from __future__ import annotations

import os
from dataclasses import dataclass

BOM = b"\xef\xbb\xbf"
BINARY_PROBE = 8192


@dataclass(frozen=True)
class Endings:
    """What a file's bytes say about its line endings."""

    binary: bool
    crlf: int
    lf: int
    bom_before_shebang: bool

    @property
    def has_crlf(self) -> bool:
        """Any CRLF line."""
        return self.crlf > 0

    @property
    def mixed(self) -> bool:
        """Both CRLF and bare LF lines."""
        return 0 < self.crlf < self.lf

    @property
    def needs_fix(self) -> bool:
        """Whether conversion would change the file."""
        return not self.binary and (self.has_crlf or self.bom_before_shebang)


def classify(data: bytes) -> Endings:
    """Count CRLF and LF lines; a NUL byte in the first 8 KiB marks the file binary."""
    if data.find(b"\0", 0, BINARY_PROBE) >= 0:
        return Endings(True, 0, 0, False)
    bom = data.startswith(BOM + b"#!")
    if b"\r" not in data:  # the common case costs one memchr
        return Endings(False, 0, data.count(b"\n"), bom)
    return Endings(False, data.count(b"\r\n"), data.count(b"\n"), bom)


def to_lf(data: bytes) -> bytes:
    """CRLF -> LF, and a UTF-8 BOM before a shebang removed; every other byte unchanged."""
    if data.startswith(BOM + b"#!"):
        data = data[len(BOM) :]
    return data.replace(b"\r\n", b"\n")


def convert_file(path: str) -> bytes | None:
    """Rewrite a text file with LF endings, atomically, keeping mode, owner and group.

    Returns the original bytes (for the fix journal), or None when nothing had to change
    (binary, already LF). Goes through `safe_files`: no planted symlink is followed, and the
    file is replaced only if it is still the one read.
    """
    from qtctl.adapters import safe_files

    original, snapshot = safe_files.read_file(os.path.abspath(path))
    if not classify(original).needs_fix:
        return None
    safe_files.replace_file(os.path.abspath(path), to_lf(original), snapshot)
    return original
