"""Repairs of files: CRLF in an executed script (QT301) or in sources (QT302), and env files
(QT703: mode 600 to the one reader; misread lines rewritten with --unsafe)."""

from __future__ import annotations

import dataclasses
import difflib
import os
import pwd
from collections.abc import Callable, Sequence

from qtctl.adapters import safe_files, safe_walk
from qtctl.diagnosis.env_file import environment, intended, masked, misreads, rewrite
from qtctl.diagnosis.env_files import env_uses, secret_names, shell_sourced
from qtctl.diagnosis.exec_targets import ExecTarget, cr_breaks, exec_targets
from qtctl.engine.facts import EnvFileFacts, FileFacts
from qtctl.engine.findings import Finding
from qtctl.fix.actions import Action, ConvertLF, RewriteFile, SecureFile
from qtctl.fix.policy import never_change, protected_file, readers_by_file
from qtctl.fix.repair import Planning, Repair

OWNER_CAUSES = ("secrets-readable",)
SYNTAX_CAUSES = ("inline-comment", "export-prefix", "crlf")
MAX_ENV_BYTES = 4 * 2**20  # as QT703 reads them


def plan_crlf_executed(finding: Finding, facts: FileFacts, planning: Planning) -> Repair:
    """QT301: convert the executed script to LF (the unit's restart is QT101's repair), only
    while the kernel or a shell still reads it for that unit (Python reads CRLF source fine)."""
    actions = tuple(ConvertLF(path) for path in facts.paths)
    units = planning.ctx.config.fleet.units
    targets: list[ExecTarget] = planning.ctx.memo("exec_targets", lambda: exec_targets(units))
    broken = {
        t.script
        for t in targets
        if t.unit == finding.subject
        and t.script
        and cr_breaks(t, safe_walk.read_head(t.script, 512))
    }
    if any(path not in broken for path in facts.paths):
        return Repair(finding, actions, held="no longer read by the kernel or a shell: QT302's")
    protected = never_change(finding.subject, planning.units, planning.ctx.config)
    protected = protected or guarded(facts.paths, planning)  # another unit, the same file
    if protected:
        return Repair(finding, actions, held=protected, rule="protected")
    if any(os.path.islink(path) for path in facts.paths):
        return Repair(finding, actions, held="a symlink: convert its target by hand")
    refused = next(filter(None, map(safe_files.refusal, facts.paths)), "")
    return Repair(finding, actions, held=f"not converted: {refused}" if refused else "")


def plan_crlf_sources(finding: Finding, facts: FileFacts, planning: Planning) -> Repair:
    """QT302: convert source files to LF, only when asked for explicitly."""
    refused = {
        p: why for p in facts.paths if (why := safe_files.refusal(p) or guarded([p], planning))
    }
    actions = tuple(ConvertLF(p) for p in facts.paths if p not in refused)
    manual = "; ".join(f"left alone: {why}" for why in list(refused.values())[:5])
    if len(refused) > 5:
        manual += f"; and {len(refused) - 5} more"
    config = planning.ctx.config
    asked = any(p.strip().upper() == "QT302" for p in config.doctor.select)
    if not (asked or config.fix.convert_source_files):
        return Repair(
            finding,
            actions,
            held="converting source files needs --select QT302 or fix.convert_source_files = true",
            manual=manual,
        )
    return Repair(finding, actions, manual=manual)


def plan_env_file(finding: Finding, facts: EnvFileFacts, planning: Planning) -> Repair:
    """QT703: mode 600 to the one reading user (safe); misread lines rewritten with --unsafe;
    shown and held for a file a protected unit reads."""
    repair = _plan_env_file(finding, facts, planning)
    config = planning.ctx.config
    readers = sorted({u.unit for u in env_uses(config.fleet.units) if u.path == facts.path})
    protected = next(filter(None, (never_change(u, planning.units, config) for u in readers)), "")
    protected = protected or guarded([facts.path], planning)  # sourced by a protected unit
    held = protected or (f"not changed: {why}" if (why := safe_files.refusal(facts.path)) else "")
    return dataclasses.replace(repair, held=held) if held else repair


def guarded(paths: Sequence[str], planning: Planning) -> str:
    """Why fix must change none of `paths` because a protected unit runs or reads one, or ''."""
    config = planning.ctx.config
    targets = planning.ctx.memo("exec_targets", lambda: exec_targets(config.fleet.units))
    readers = planning.ctx.memo(
        "fix_file_readers", lambda: readers_by_file(config.fleet.units, targets)
    )
    return protected_file(paths, planning.units, config, readers)


def _plan_env_file(finding: Finding, facts: EnvFileFacts, planning: Planning) -> Repair:
    causes, path = facts.causes, facts.path
    actions: list[Action] = []
    held: list[str] = []
    solved: list[str] = []
    if any(c in causes for c in OWNER_CAUSES):
        why = _shell_reader(path, planning)
        if why:
            held.append(why)
        else:  # systemd reads EnvironmentFile= as root: mode 600, never a chown to a service
            actions.append(SecureFile(path, _owner(path)))
            solved += [c for c in OWNER_CAUSES if c in causes]
    diff = ""
    if any(c in causes for c in SYNTAX_CAUSES):
        patterns = planning.ctx.config.services.secret_patterns
        rewritten = _proven_rewrite(path, lambda name: bool(secret_names([name], patterns)))
        if rewritten is None:
            held.append(
                "rewrite held: a line needs a person first (see the detail), or the "
                "rewrite would not give the intended values"
            )
        elif planning.options.unsafe:
            text, diff = rewritten
            actions.append(RewriteFile(path, text, "misread lines systemd reads as meant"))
            solved += [c for c in SYNTAX_CAUSES if c in causes]
        else:
            diff = rewritten[1]
            held.append(
                "rewriting an env file changes what services get at their next "
                "start: needs --unsafe (the diff below)"
            )
    if not actions:
        return Repair(finding, held="; ".join(held) or "nothing qtctl can repair", diff=diff)
    return Repair(
        finding, tuple(actions), manual="; ".join(held), resolves=",".join(solved), diff=diff
    )


def _shell_reader(path: str, planning: Planning) -> str:
    """Why mode 600 would break a unit: a shell of a fleet unit sources the file (it reads it as
    the unit's user, not as systemd does), or ''."""
    config = planning.ctx.config
    targets = planning.ctx.memo("exec_targets", lambda: exec_targets(config.fleet.units))
    unit = shell_sourced(targets).get(os.path.realpath(path), "")
    if not unit:
        return ""
    return (
        f"a shell of {unit} sources it as the unit's user: give the readers one group, then "
        f"chgrp GROUP {path} && chmod 640 {path}"
    )


def _owner(path: str) -> str:
    """The file's owner by name (root when it has none by name): mode 600 keeps it."""
    try:
        return pwd.getpwuid(os.stat(path).st_uid).pw_name
    except (OSError, KeyError):
        return "root"


def _proven_rewrite(path: str, is_secret: Callable[[str], bool]) -> tuple[str, str] | None:
    """The rewritten text and its diff (secret values masked), when systemd's reading of it is
    the intended one."""
    try:  # never through a planted link, a FIFO or a device: its text reaches the diff
        original = safe_files.read_for_check(os.path.abspath(path), MAX_ENV_BYTES).decode()
    except (OSError, UnicodeDecodeError, safe_files.UnsafePath):
        return None
    text, unrepairable = rewrite(original)
    if unrepairable:
        return None
    if {m.kind for m in misreads(text)} or environment(text) != intended(original):
        return None
    diff = "".join(
        difflib.unified_diff(
            masked(original, is_secret).splitlines(keepends=True),
            masked(text, is_secret).splitlines(keepends=True),
            path,
            path,
        )
    )
    if "\r\n" in original:
        diff = f"(CRLF line endings become LF)\n{diff}"
    return text, diff
