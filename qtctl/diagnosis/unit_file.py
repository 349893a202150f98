"""Read systemd unit files exactly as systemd does: sections, continuations, no inline comments."""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

UNIT_DIRS = (
    "/etc/systemd/system",
    "/run/systemd/system",
    "/usr/local/lib/systemd/system",
    "/lib/systemd/system",
    "/usr/lib/systemd/system",
)
KNOWN_SECTIONS = frozenset(
    {
        "Unit",
        "Service",
        "Install",
        "Timer",
        "Socket",
        "Path",
        "Mount",
        "Automount",
        "Swap",
        "Slice",
        "Scope",
    }
)


@dataclass(frozen=True)
class Directive:
    """One `Key=value` assignment and where it stands."""

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
    """One parsed file: its assignments and the lines systemd ignores."""

    path: str
    directives: tuple[Directive, ...]
    ignored: tuple[tuple[int, str], ...] = field(default=())


def parse(path: str) -> UnitFile:
    """Parse a unit file or drop-in; unreadable files parse as empty with a note."""
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        return UnitFile(path, (), ((0, f"cannot read: {exc.strerror}"),))
    return parse_text(text, path)


def parse_text(text: str, path: str) -> UnitFile:
    """Parse unit file text (see systemd.syntax(7))."""
    directives: list[Directive] = []
    ignored: list[tuple[int, str]] = []
    section = ""
    pending = ""
    start = 0
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.rstrip("\r")
        if pending:
            line, number = pending + line.lstrip(), start
        stripped = line.strip()
        if stripped.endswith("\\") and not stripped.startswith(("#", ";")):
            pending, start = stripped[:-1].rstrip() + " ", number
            continue
        pending = ""
        if not stripped or stripped.startswith(("#", ";")):
            continue
        if stripped.startswith("["):
            section = stripped.strip("[]")
            if section not in KNOWN_SECTIONS and not section.startswith("X-"):
                ignored.append((number, f"unknown section [{section}]: systemd ignores it"))
            continue
        key, eq, value = stripped.partition("=")
        if not eq:
            ignored.append((number, f"not an assignment: {stripped[:60]!r}"))
        elif not section:
            ignored.append((number, f"{key.strip()}= outside any [Section]: systemd ignores it"))
        else:
            directives.append(Directive(section, key.strip(), value.strip(), path, number))
    return UnitFile(path, tuple(directives), tuple(ignored))


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
    found: dict[str, str] = {}
    for base in reversed(UNIT_DIRS):
        try:
            entries = os.listdir(base)
        except OSError:
            continue
        for entry in entries:
            path = os.path.join(base, entry)
            if not any(fnmatch.fnmatchcase(entry, p) for p in patterns):
                continue
            real = os.path.realpath(path)
            if real == "/dev/null":
                found.pop(entry, None)  # masked: not to be linted or started
            elif os.path.isfile(real) and os.path.basename(real) == entry:
                found[entry] = real  # a unit file, or one linked in with `systemctl link`
            # anything else is an alias or an enablement link
    return found


def drop_in_paths(name: str) -> list[str]:
    """The .conf drop-ins systemd reads for a unit, in directory precedence order."""
    found = []
    for base in UNIT_DIRS:
        folder = os.path.join(base, f"{name}.d")
        if os.path.isdir(folder):
            found += [
                os.path.join(folder, e) for e in sorted(os.listdir(folder)) if e.endswith(".conf")
            ]
    return found
