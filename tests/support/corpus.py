"""systemd's own test corpora (fetched by scripts/setup.sh) laid out as sandbox batches.

Unit batches: test/units, test/test-execute and test/test-path as they are (drop-in folders
included; a template is run as its instance `corpus`), and test/fuzz/fuzz-unit-file, whose first
line names the unit type (as the fuzzer reads it). A name the box itself uses is prefixed with
`corpus-`, so that no corpus file replaces a unit the box boots with. Env cases: every file under
test/fuzz (any bytes at all) plus the vectors of src/test/test-env-file.c.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from qtctl.diagnosis.lines import physical_lines
from qtctl.diagnosis.specifiers import UNIT_TYPES, name_is_valid

REPO = Path(__file__).resolve().parents[2]
CACHE = REPO / ".cache/systemd-src"
UNIT_DIRS = ("units", "test-execute", "test-path")
SYSTEM_UNIT_DIRS = ("/lib/systemd/system", "/usr/lib/systemd/system", "/etc/systemd/system")
RESERVED = {"sandbox-default.target", "default.target"}
LOADABLE = set(UNIT_TYPES) - {"device"}  # the fuzzer skips types without a load()


def corpus_root() -> Path | None:
    """The test/ folder of the installed systemd's corpus, or None when setup did not fetch it."""
    try:
        version = subprocess.run(
            ["dpkg-query", "-W", "-f=${Version}", "systemd"], capture_output=True, text=True
        ).stdout.strip()
    except OSError:
        return None
    root = CACHE / version
    return root / "test" if version and (root / ".complete").exists() else None


@dataclass
class CorpusUnit:
    """One unit file of the corpus, as it is installed in the box."""

    name: str  # the unit systemd is asked to load (an instance for a template)
    file_name: str  # its file in /etc/systemd/system
    source: str  # where it comes from in the corpus
    data: bytes
    dropins: dict[str, bytes] = field(default_factory=dict)


def unit_batches(root: Path) -> dict[str, list[CorpusUnit]]:
    """One batch per corpus folder; names are unique within a batch."""
    batches = {folder: _folder_units(root, folder) for folder in UNIT_DIRS}
    batches["fuzz-unit-file"] = _fuzz_units(root / "fuzz/fuzz-unit-file")
    return batches


def _taken() -> set[str]:
    names = set(RESERVED)
    for folder in SYSTEM_UNIT_DIRS:
        with contextlib.suppress(OSError):
            names.update(os.listdir(folder))
    return names


def _folder_units(root: Path, folder: str) -> list[CorpusUnit]:
    base, taken = root / folder, _taken()
    units: dict[str, CorpusUnit] = {}
    for path in sorted(base.iterdir()):
        kind = path.name.rpartition(".")[2]
        if path.is_file() and kind in UNIT_TYPES and name_is_valid(path.name):
            file_name = f"corpus-{path.name}" if path.name in taken else path.name
            name = file_name.replace("@.", "@corpus.")
            units[path.name] = CorpusUnit(
                name, file_name, f"{folder}/{path.name}", path.read_bytes()
            )
    for path in sorted(base.glob("*.d/*.conf")):
        owner = units.get(path.parent.name.removesuffix(".d"))
        if owner is not None:
            owner.dropins[path.name] = path.read_bytes()
    return list(units.values())


def _fuzz_units(base: Path) -> list[CorpusUnit]:
    units = []
    for path in sorted(base.iterdir()):
        data = path.read_bytes()
        first = next(physical_lines(data), None)
        kind = first.text.decode("latin-1") if first else ""
        if kind not in LOADABLE:
            continue
        rest = data[_after_first_line(data) :]
        stem = re.sub(r"[^A-Za-z0-9_.:]", "_", path.stem if "." in path.name else path.name)
        name = f"fuzz-{stem}.{kind}"
        units.append(CorpusUnit(name, name, f"fuzz/fuzz-unit-file/{path.name}", rest))
    return units


def _after_first_line(data: bytes) -> int:
    lines = physical_lines(data)
    next(lines, None)
    second = next(lines, None)
    return second.start if second else len(data)


def env_cases(root: Path) -> list[tuple[str, bytes]]:
    """(where from, bytes) for every env-file case."""
    cases = [
        (str(p.relative_to(root)), p.read_bytes())
        for p in sorted((root / "fuzz").rglob("*"))
        if p.is_file()
    ]
    return cases + env_vectors(root.parent / "src/test/test-env-file.c")


def env_vectors(source: Path) -> list[tuple[str, bytes]]:
    """The `#define env_file_N` string constants of systemd's own env-file test."""
    try:
        code = source.read_text()
    except OSError:
        return []
    found = []
    for match in re.finditer(r"#define (env_file_\d+)\s*\\\n((?:\s*\".*\"\s*\\?\n)+)", code):
        literals = re.findall(r'"((?:[^"\\]|\\.)*)"', match.group(2))
        raw = "".join(literals).encode().decode("unicode_escape").encode("latin-1")
        found.append((f"src/test/test-env-file.c:{match.group(1)}", raw))
    return found
