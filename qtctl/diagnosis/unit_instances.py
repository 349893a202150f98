"""Which fleet units exist on disk: unit files, and the enabled instances of templates.

An instance `name@inst.service` has no file of its own: systemd loads the template
`name@.service` (or a file named for the instance, when there is one) with `%i` = `inst`. Enabled
instances are the `*.wants/`, `*.requires/` and `*.upholds/` links of the unit directories, or an
instance name linked to its template at the top of a unit directory.
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Sequence

from qtctl.diagnosis.specifiers import name_is_valid

UNIT_DIRS = (
    "/etc/systemd/system",
    "/run/systemd/system",
    "/usr/local/lib/systemd/system",
    "/lib/systemd/system",
    "/usr/lib/systemd/system",
)
LINK_DIRS = (".wants", ".requires", ".upholds")


def files_on_disk(patterns: Sequence[str]) -> dict[str, str]:
    """Fleet unit files installed but maybe not loaded; /etc wins over /run over /lib."""
    found: dict[str, str] = {}
    for base in reversed(UNIT_DIRS):
        real_base = os.path.realpath(base)
        for entry in _scan(base):
            if not _matches(entry.name, patterns):
                continue
            link = entry.is_symlink()
            real = os.path.realpath(entry.path) if link else os.path.join(real_base, entry.name)
            if real == "/dev/null":
                found.pop(entry.name, None)  # masked: not to be linted or started
            elif (entry.is_file() if not link else os.path.isfile(real)) and (
                os.path.basename(real) == entry.name
            ):
                found[entry.name] = real  # a unit file, or one linked in with `systemctl link`
            # anything else is an alias or an enablement link
    return found


def units_on_disk(patterns: Sequence[str]) -> dict[str, str]:
    """Unit name -> the file systemd loads for it: every fleet unit file, plus each enabled
    instance of a template (pointing at the template file)."""
    instances = {n for n in _linked_instances(UNIT_DIRS) if _matches(n, patterns)}
    templates = sorted({template_of(n) for n in instances})
    files = files_on_disk([*patterns, *templates])
    found = {name: path for name, path in files.items() if _matches(name, patterns)}
    for name in sorted(instances - set(found)):
        template = template_of(name)
        if template in files and not _masked(name):
            found[name] = files[template]
    return found


def template_of(name: str) -> str:
    """`a@b.service` -> `a@.service`; '' when `name` is no instance."""
    stem, _, kind = name.rpartition(".")
    base, at, instance = stem.partition("@")
    return f"{base}@.{kind}" if at and instance and name_is_valid(name) else ""


def is_template(name: str) -> bool:
    """`a@.service`: a template, which systemd never runs by itself."""
    stem = name.rpartition(".")[0]
    return stem.endswith("@") and name_is_valid(name)


def _linked_instances(bases: Sequence[str]) -> set[str]:
    names: set[str] = set()
    for base in bases:
        for entry in _entries(base):
            folder = os.path.join(base, entry)
            if entry.endswith(LINK_DIRS) and os.path.isdir(folder):
                names.update(e for e in _entries(folder) if template_of(e))
            elif template_of(entry) and os.path.islink(folder) and _links_to_template(folder):
                names.add(entry)
    return names


def _links_to_template(link: str) -> bool:
    return os.path.basename(os.path.realpath(link)) == template_of(os.path.basename(link))


def _masked(name: str) -> bool:
    """Whether the first unit directory that has `name` links it to /dev/null."""
    for base in UNIT_DIRS:
        path = os.path.join(base, name)
        if os.path.lexists(path):
            return os.path.realpath(path) == "/dev/null"
    return False


def _scan(folder: str) -> list[os.DirEntry[str]]:
    try:
        with os.scandir(folder) as entries:
            return list(entries)
    except OSError:
        return []


def _entries(folder: str) -> list[str]:
    try:
        return os.listdir(folder)
    except OSError:
        return []


def _matches(name: str, patterns: Sequence[str]) -> bool:
    return any(fnmatch.fnmatchcase(name, p) for p in patterns)
