"""Unit-file rules of lint that doctor's `unit_lint` reads from the host: what systemd-analyze
verify says of unknown keys, and WorkingDirectory/PYTHONPATH judged on the checkout."""

from __future__ import annotations

from collections.abc import Iterator

from qtctl.diagnosis.unit_file import sections_for
from qtctl.diagnosis.unit_keys import KNOWN
from qtctl.diagnosis.unit_lint import HIDING_HOME, Problem, UnitView
from qtctl.engine.findings import Severity
from qtctl.lint.tree import PathMap


def unknown_keys(view: UnitView) -> Iterator[Problem]:
    """Keys no section of this unit type knows (`systemd-analyze verify` says the same); one in
    the wrong section is `wrong_section`'s."""
    for unit_file in view.loaded.kept:
        sections = sections_for(unit_file.path) & sections_for(view.name)
        for d in unit_file.directives:
            if d.section not in KNOWN or d.key.startswith("X-") or d.key in KNOWN[d.section]:
                continue
            if any(d.key in KNOWN.get(s, frozenset()) for s in sections):
                continue
            yield Problem(
                Severity.WARNING,
                "unknown-key",
                d.where,
                f"Unknown key '{d.key}' in section [{d.section}], ignoring.",  # verify's words
            )


def mapped_runtime(view: UnitView, paths: PathMap) -> Iterator[Problem]:
    """ProtectHome over code in /home; WorkingDirectory and PYTHONPATH entries that the
    checkout, under `lint.path_map`, does not have."""
    commands = view.loaded.commands()
    exec_start = " ".join(w for c in commands for w in (c.path, *c.argv))
    workdir = view.value("WorkingDirectory")
    protect = view.value("ProtectHome")
    if protect in HIDING_HOME and "/home/" in f" {exec_start} {workdir}":
        yield Problem(
            Severity.ERROR,
            "protect-home",
            "",
            f"ProtectHome={protect} hides /home, where this service's code lives",
        )
    folder = paths.to_tree(workdir) if workdir.startswith("/") else ""  # `!`: optional
    if folder and not _is_dir(folder):
        yield Problem(
            Severity.ERROR,
            "working-directory",
            "",
            f"WorkingDirectory={workdir} does not exist in the checkout ({folder})",
        )
    pythonpath = view.loaded.environment().get("PYTHONPATH", "")
    for entry in (p for p in pythonpath.split(":") if p.startswith("/")):
        mapped = paths.to_tree(entry)
        if mapped and not _is_dir(mapped):
            yield Problem(
                Severity.ERROR,
                "pythonpath",
                "",
                f"PYTHONPATH entry {entry} does not exist in the checkout ({mapped})",
            )


def _is_dir(path: str) -> bool:
    import os

    return os.path.isdir(path)
