"""Read systemd unit files exactly as systemd 252 does (src/shared/conf-parser.c, config_parse).

Lines come from the shared read_line port (qtctl.diagnosis.lines). A comment is a line whose first
non-blank character is `#` or `;`, even in the middle of a continuation; a line ending in an odd
number of backslashes continues, the backslash becoming a space and the next line appended as it
is (its indentation kept); systemd reports a continued assignment at its last line. No inline
comments. Lines systemd ignores with a message are kept with that reason; a line that makes systemd
stop reading (a bad section header, invalid UTF-8, a line over 1 MiB) is the file's `fatal` error.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from qtctl.diagnosis.lines import LONG_LINE_MAX, line_texts, utf8
from qtctl.diagnosis.unit_instances import UNIT_DIRS as UNIT_DIRS  # re-exported: its old home
from qtctl.diagnosis.unit_instances import files_on_disk

TYPE_SECTIONS = {
    "service": "Service",
    "socket": "Socket",
    "target": "Target",
    "device": "Device",
    "mount": "Mount",
    "automount": "Automount",
    "swap": "Swap",
    "timer": "Timer",
    "path": "Path",
    "slice": "Slice",
    "scope": "Scope",
}
KNOWN_SECTIONS = frozenset({"Unit", "Install", *TYPE_SECTIONS.values()})
WHITESPACE = b" \t\n\r"
BOM = b"\xef\xbb\xbf"
COMMENT_OR_BLANK = (b"#", b";", b" ", b"\t", b"\n", b"\r")  # first bytes worth a closer look


@dataclass(frozen=True)
class Directive:
    """One `Key=value` assignment and the line systemd reports it at."""

    section: str
    key: str
    value: str
    path: str
    line: int

    @property
    def where(self) -> str:
        """path:line."""
        return f"{self.path}:{self.line}"


@dataclass(frozen=True)
class UnitFile:
    """One parsed file: its assignments, the lines systemd ignores, and why it stopped reading."""

    path: str
    directives: tuple[Directive, ...]
    ignored: tuple[tuple[int, str], ...] = field(default=())
    fatal: tuple[int, str] | None = None  # systemd stopped here; a fragment is then refused


def parse(path: str) -> UnitFile:
    """Parse a unit file or drop-in; unreadable files parse as empty with a note."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        return UnitFile(path, (), ((0, f"cannot read: {exc.strerror}"),))
    return parse_bytes(data, path)


def parse_text(text: str, path: str) -> UnitFile:
    """Parse unit file text (see systemd.syntax(7))."""
    return parse_bytes(text.encode("utf-8", "surrogateescape"), path)


def sections_for(path: str) -> frozenset[str]:
    """The sections systemd reads in a file of this unit type (all known ones when unknown)."""
    name = os.path.basename(path)
    if name.endswith(".conf"):
        name = os.path.basename(os.path.dirname(path)).removesuffix(".d")
    kind = name.rpartition(".")[2]
    if kind in TYPE_SECTIONS:
        return frozenset({"Unit", TYPE_SECTIONS[kind], "Install"})
    return KNOWN_SECTIONS


def parse_bytes(data: bytes, path: str, sections: frozenset[str] | None = None) -> UnitFile:
    """Parse the bytes of a unit file as config_parse() does."""
    parser = _Parser(path, sections or sections_for(path))
    try:
        parser.feed(data)
    except _Fatal as stop:
        return parser.result((stop.line, stop.reason))
    return parser.result(None)


class _Fatal(Exception):
    def __init__(self, line: int, reason: str) -> None:
        super().__init__(reason)
        self.line, self.reason = line, reason


class _Parser:
    """config_parse + parse_line; `continuation` holds the pieces of a continued line."""

    def __init__(self, path: str, sections: frozenset[str]) -> None:
        self.path, self.sections = path, sections
        self.section: str | None = None
        self.section_ignored = False
        self.directives: list[Directive] = []
        self.ignored: list[tuple[int, str]] = []

    def result(self, fatal: tuple[int, str] | None) -> UnitFile:
        return UnitFile(self.path, tuple(self.directives), tuple(self.ignored), fatal)

    def feed(self, data: bytes) -> None:
        pieces: list[bytes] = []  # a continued line so far, each backslash made a space
        size, number, bom_seen = 0, 0, False
        for number, text in enumerate(line_texts(data), 1):
            if len(text) >= LONG_LINE_MAX:
                raise _Fatal(number, "line too long (1 MiB or more): systemd stops reading here")
            if text[:1] in COMMENT_OR_BLANK and text.lstrip(WHITESPACE)[:1] in (b"#", b";"):
                continue
            if not bom_seen and text.startswith(BOM):
                text, bom_seen = text[3:], True
            if pieces and size + len(text) > LONG_LINE_MAX:
                raise _Fatal(number, "continuation line too long: systemd stops reading here")
            size += len(text)
            if text.endswith(b"\\") and _odd_backslashes(text):
                pieces.append(text[:-1] + b" ")
                continue
            self.line(b"".join([*pieces, text]) if pieces else text, number)
            pieces, size = [], 0
        if pieces:
            self.line(b"".join(pieces), number + 1)

    def line(self, raw: bytes, number: int) -> None:
        stripped = raw.strip(WHITESPACE)
        if not stripped:
            return
        text = utf8(stripped)
        if text is None:
            raise _Fatal(number, "not UTF-8 clean: systemd stops reading here")
        if text.startswith("["):
            self._section(text, number)
        elif self.section is None:
            if not self.section_ignored:
                what = f"{text.partition('=')[0].strip()}=" if "=" in text else repr(text[:60])
                self.ignored.append((number, f"{what} outside any [Section]: systemd ignores it"))
        elif "=" not in text:
            self.ignored.append((number, f"not an assignment: {text[:60]!r}"))
        elif text.startswith("="):
            self.ignored.append((number, f"{text[:60]!r} has no key name: systemd ignores it"))
        else:
            key, _, value = text.partition("=")
            strip = WHITESPACE.decode()
            self.directives.append(
                Directive(self.section, key.strip(strip), value.strip(strip), self.path, number)
            )

    def _section(self, text: str, number: int) -> None:
        if not text.endswith("]"):
            raise _Fatal(number, f"invalid section header {text[:60]!r}: systemd stops reading")
        name = text[1:-1]
        if not _string_is_safe(name):
            raise _Fatal(number, f"bad characters in section header {text[:60]!r}")
        if name in self.sections:
            self.section, self.section_ignored = name, False
            return
        if not name.startswith("X-"):
            self.ignored.append((number, f"unknown section [{name}]: systemd ignores it"))
        self.section, self.section_ignored = None, True


def _odd_backslashes(text: bytes) -> bool:
    return (len(text) - len(text.rstrip(b"\\"))) % 2 == 1


def _string_is_safe(text: str) -> bool:
    return not any(c < " " or c in "\"'\\\x7f" for c in text)


def effective(files: Sequence[UnitFile], section: str, key: str) -> str:
    """The value systemd ends up with: the last assignment wins, an empty one resets."""
    value = ""
    for unit_file in files:
        for d in unit_file.directives:
            if d.section == section and d.key == key:
                value = d.value
    return value


def all_values(files: Sequence[UnitFile], section: str, key: str) -> list[Directive]:
    """Every assignment of a list-type key, honouring resets by an empty assignment."""
    found: list[Directive] = []
    for unit_file in files:
        for d in unit_file.directives:
            if d.section == section and d.key == key:
                found = [] if not d.value else [*found, d]
    return found


def unit_files_on_disk(patterns: Sequence[str]) -> dict[str, str]:
    """Fleet unit files installed but maybe not loaded; /etc wins over /run over /lib."""
    return files_on_disk(patterns)


def drop_in_paths(name: str) -> list[str]:
    """The .conf drop-ins systemd reads for a unit, in the order it applies them.

    For `a-b@i.service`: `a-b@i.service.d`, `a-b@.service.d`, `a-.service.d` and `service.d`
    in every unit directory; sorted by file name, the first directory holding a name wins.
    """
    chosen: dict[str, str] = {}
    for folder in _drop_in_dirs(name):
        try:
            entries = os.listdir(folder)
        except OSError:
            continue
        for entry in entries:
            path = os.path.join(folder, entry)
            if entry.endswith(".conf") and entry not in chosen and os.path.isfile(path):
                chosen[entry] = path
    return [path for _, path in sorted(chosen.items()) if os.path.realpath(path) != "/dev/null"]


def _drop_in_dirs(name: str) -> Iterator[str]:
    for base in UNIT_DIRS:
        for stem in _drop_in_names(name):
            yield os.path.join(base, f"{stem}.d")
    kind = name.rpartition(".")[2]
    for base in UNIT_DIRS:
        yield os.path.join(base, f"{kind}.d")


def _drop_in_names(name: str) -> list[str]:
    """unit_file_find_dirs: the name, its template, then its dash prefixes (`a-b` -> `a-`)."""
    stem, _, kind = name.rpartition(".")
    names = [name]
    base, at, instance = stem.partition("@")
    if at and instance:
        names += _drop_in_names(f"{base}@.{kind}")
    chopped = False
    while True:
        dash = base.rfind("-")
        if dash <= 0:
            return names
        if dash + 1 < len(base) or chopped:
            base = base[: dash + 1]
            break
        base, chopped = base[:dash], True
    built = f"{base}@{instance}.{kind}" if at and instance else f"{base}.{kind}"
    return names + _drop_in_names(built)
