"""The files of a checkout lint looks at: unit files and their drop-ins, found in one walk, and
the deploy paths units name mapped onto the checkout (`lint.path_map`)."""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass, field

from qtctl.adapters import safe_files, safe_walk
from qtctl.diagnosis.code_scan import MAX_DEPTH, SKIP_DIRS
from qtctl.diagnosis.unit_file import TYPE_SECTIONS

MAX_UNIT_BYTES = 4 * 2**20  # systemd stops at a 1 MiB line; a bigger unit file is not one
MAX_UNIT_LINES = 100_000  # the biggest real unit files have hundreds
UNIT_SUFFIXES = tuple(f".{kind}" for kind in TYPE_SECTIONS if kind != "scope")


@dataclass
class Tree:
    """Unit files (name -> every path holding that name), drop-ins (folder -> files), and the
    unit names of the whole checkout (those a Requires= may name)."""

    roots: tuple[str, ...]
    units: dict[str, list[str]] = field(default_factory=dict)
    known: set[str] = field(default_factory=set)
    data: dict[str, bytes] = field(default_factory=dict)  # path -> bytes, read once
    drop_ins: dict[str, list[str]] = field(default_factory=dict)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    unparsed: list[tuple[str, str]] = field(default_factory=list)  # (path, why): not parsed

    def has_unit(self, name: str) -> bool:
        """Whether the checkout holds this unit (an instance: its template)."""
        names = self.known | set(self.units)
        stem, at, rest = name.partition("@")
        return name in names or (bool(at) and f"{stem}@{rest[rest.find('.') :]}" in names)


def find_units(paths: Sequence[str], checkout: str) -> Tree:
    """Walk the folders (no symlinked folder, no VCS/venv folder) and take the files named;
    when files are named, the checkout's unit names are read too (a Requires= of a unit file
    not named is not missing)."""
    tree = Tree(tuple(paths))
    for path in paths:
        if os.path.isdir(path):
            _walk(path, tree)
        else:
            _take(path, tree, _read(path))
    if any(not os.path.isdir(p) for p in paths):
        everything = Tree((checkout,))
        _walk(checkout, everything)
        tree.known = set(everything.units)
    for files in tree.drop_ins.values():
        files.sort()
    return tree


def target_refusal(path: str) -> str:
    """Why a path named on the command line will not be linted ('' when it will): a symlink
    another user could have planted (on the way or at the end), a FIFO or device. Checked
    before the run, so a refused target is a usage error (exit 2), never a pass."""
    full = os.path.abspath(path)
    try:
        if os.path.isdir(full):
            os.close(safe_files.open_folder(full))
        else:
            safe_files.read_for_check(full, 0)
    except safe_files.UnsafePath as exc:
        return str(exc)
    except OSError as exc:
        return f"{path}: {exc.strerror}"
    return ""


def _walk(root: str, tree: Tree) -> None:
    """Unit files and drop-ins are read here, relative to their folder's fd and never through
    a link: a symlink (an alias) only names a unit, a FIFO or device is not read at all."""
    try:
        for path, name, folder in safe_walk.walk(root, SKIP_DIRS, MAX_DEPTH, tree.skipped):
            if not (name.endswith(UNIT_SUFFIXES) or name.endswith(".conf")):
                continue
            kind = os.stat(name, dir_fd=folder, follow_symlinks=False).st_mode
            if stat.S_ISLNK(kind) and name.endswith(UNIT_SUFFIXES):
                tree.known.add(name)
            elif stat.S_ISREG(kind):
                _take(path, tree, safe_walk.read_at(folder, name, MAX_UNIT_BYTES))
    except (OSError, safe_files.UnsafePath) as exc:
        tree.skipped.append((root, f"not scanned: {exc}"))


def _read(path: str) -> bytes | None:
    """A file named on the command line: a plain file, not a FIFO or device."""
    try:
        plain = stat.S_ISREG(os.stat(path).st_mode)
    except OSError:
        return None
    return safe_walk.read_head(path, MAX_UNIT_BYTES) if plain else None


def _take(path: str, tree: Tree, data: bytes | None) -> None:
    folder, name = os.path.split(path)
    if data is None:
        return
    why = _not_parsed(data)
    if why and name.endswith((*UNIT_SUFFIXES, ".conf")):
        tree.unparsed.append((path, why))
        if name.endswith(UNIT_SUFFIXES):
            tree.known.add(name)  # still a unit name a Requires= may name
        return
    if name.endswith(".conf"):
        if os.path.basename(folder).endswith(tuple(f"{s}.d" for s in UNIT_SUFFIXES)):
            tree.drop_ins.setdefault(folder, []).append(path)
            tree.data[path] = data
    elif name.endswith(UNIT_SUFFIXES) and not folder.endswith(".d"):
        tree.units.setdefault(name, []).append(path)
        tree.data[path] = data


def _not_parsed(data: bytes) -> str:
    """Why a unit file is not parsed ('' when it is): NUL bytes (binary content), or more
    lines than any unit file has. systemd's read_line ends a line at each NUL or CR, so a
    sparse file of NULs (free to make with `truncate`) would be millions of lines: seconds of
    parsing for nothing a human wrote."""
    if b"\0" in data:
        return "holds NUL bytes: binary content, not a unit file (not parsed)"
    lines = data.count(b"\n") + data.count(b"\r") - data.count(b"\r\n")
    if lines > MAX_UNIT_LINES:
        return f"has {lines} line ends, more than {MAX_UNIT_LINES}: not a unit file (not parsed)"
    return ""


@dataclass(frozen=True)
class PathMap:
    """Deploy paths (a unit's WorkingDirectory, ExecStart script, PYTHONPATH, EnvironmentFile)
    onto the checkout: the longest matching prefix wins; a path no entry maps is not judged."""

    pairs: tuple[tuple[str, str], ...]

    @classmethod
    def parse(cls, entries: Sequence[str], defaults: Sequence[str], checkout: str) -> PathMap:
        """`FROM=TO` entries (TO relative to the checkout: the first folder linted); none
        given: each of `defaults` (fleet.code_roots) maps to the checkout itself."""
        from qtctl.errors import ConfigError

        pairs = []
        for entry in entries or [f"{d}=." for d in defaults]:
            source, sep, target = entry.partition("=")
            if not sep or not source.startswith("/") or not target:
                raise ConfigError(
                    f"expected /DEPLOY/PATH=CHECKOUT/PATH, got {entry!r}", key="lint.path_map"
                )
            pairs.append((source.rstrip("/") or "/", os.path.join(checkout, target)))
        return cls(tuple(sorted(pairs, key=lambda p: -len(p[0]))))

    def to_tree(self, path: str) -> str:
        """The checkout path of a deploy path, or '' when no entry maps it."""
        for source, target in self.pairs:
            if path == source or path.startswith(source.rstrip("/") + "/"):
                rest = path[len(source) :].lstrip("/")
                return os.path.join(target, rest) if rest else target
        return ""
