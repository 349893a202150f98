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
        for entry in _entries(base):
            if not _matches(entry, patterns):
                continue
            real = os.path.realpath(os.path.join(base, entry))
            if real == "/dev/null":
                found.pop(entry, None)  # masked: not to be linted or started
            elif os.path.isfile(real) and os.path.basename(real) == entry:
                found[entry] = real  # a unit file, or one linked in with `systemctl link`
            # anything else is an alias or an enablement link
    return found


def units_on_disk(patterns: Sequence[str]) -> dict[str, str]:
    """Unit name -> the file systemd loads for it: every fleet unit file, plus each enabled
    instance of a template (pointing at the template file)."""
    files = files_on_disk(["*"])
    found = {name: path for name, path in files.items() if _matches(name, patterns)}
    masked = _masked(UNIT_DIRS)
    for name in sorted(_linked_instances(UNIT_DIRS)):
        template = template_of(name)
        if name in found or name in masked or not _matches(name, patterns):
            continue
        if template in files and template not in masked:
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


def _masked(bases: Sequence[str]) -> set[str]:
    return {
        entry
        for base in bases
        for entry in _entries(base)
        if os.path.realpath(os.path.join(base, entry)) == "/dev/null"
    }


def _entries(folder: str) -> list[str]:
    try:
        return os.listdir(folder)
    except OSError:
        return []


def _matches(name: str, patterns: Sequence[str]) -> bool:
    return any(fnmatch.fnmatchcase(name, p) for p in patterns)
