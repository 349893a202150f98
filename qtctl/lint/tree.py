"""The files of a checkout lint looks at: unit files and their drop-ins, found in one walk, and
the deploy paths units name mapped onto the checkout (`lint.path_map`)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field

from qtctl.adapters import safe_files, safe_walk
from qtctl.diagnosis.code_scan import MAX_DEPTH, SKIP_DIRS
from qtctl.diagnosis.unit_file import TYPE_SECTIONS

UNIT_SUFFIXES = tuple(f".{kind}" for kind in TYPE_SECTIONS if kind != "scope")


@dataclass
class Tree:
    """Unit files (name -> every path holding that name), drop-ins (folder -> files), and the
    unit names of the whole checkout (those a Requires= may name)."""

    roots: tuple[str, ...]
    units: dict[str, list[str]] = field(default_factory=dict)
    known: set[str] = field(default_factory=set)
    drop_ins: dict[str, list[str]] = field(default_factory=dict)
    skipped: list[tuple[str, str]] = field(default_factory=list)

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
            _take(path, tree)
    if any(not os.path.isdir(p) for p in paths):
        everything = Tree((checkout,))
        _walk(checkout, everything)
        tree.known = set(everything.units)
    for files in tree.drop_ins.values():
        files.sort()
    return tree


def _walk(root: str, tree: Tree) -> None:
    try:
        for path, name, _ in safe_walk.walk(root, SKIP_DIRS, MAX_DEPTH, tree.skipped):
            if name.endswith(UNIT_SUFFIXES) or name.endswith(".conf"):
                _take(path, tree)
    except (OSError, safe_files.UnsafePath) as exc:
        tree.skipped.append((root, f"not scanned: {exc}"))


def _take(path: str, tree: Tree) -> None:
    folder, name = os.path.split(path)
    if name.endswith(".conf"):
        if os.path.basename(folder).endswith(tuple(f"{s}.d" for s in UNIT_SUFFIXES)):
            tree.drop_ins.setdefault(folder, []).append(path)
    elif name.endswith(UNIT_SUFFIXES) and not folder.endswith(".d"):
        tree.units.setdefault(name, []).append(path)


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
