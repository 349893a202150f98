"""Repairs for services at run time: env files (QT703) and failing health endpoints (QT701)."""

from __future__ import annotations

import difflib
import time
from collections.abc import Callable

from qtctl.diagnosis.env_file import environment, intended, masked, misreads, rewrite
from qtctl.diagnosis.env_files import env_uses, secret_names
from qtctl.engine.findings import Finding
from qtctl.fix.actions import Action, QuarantineEntries, Restart, RewriteFile, SecureFile
from qtctl.fix.policy import never_restart, restart_permission
from qtctl.fix.repair import Planning, Repair

OWNER_CAUSES = ("secrets-readable", "unreadable-by-user")
SYNTAX_CAUSES = ("inline-comment", "export-prefix", "crlf")
HEALTH_RECHECK_SEC = 600.0  # a unit qtctl restarted this recently that fails again is not retried


def plan_env_file(finding: Finding, planning: Planning) -> Repair:
    """QT703: mode 600 to the one reading user (safe); misread lines rewritten with --unsafe."""
    causes = finding.cause.split(",")
    path = finding.subject
    actions: list[Action] = []
    held: list[str] = []
    solved: list[str] = []
    if any(c in causes for c in OWNER_CAUSES):
        users = sorted(
            {u.user or "root" for u in env_uses(planning.ctx.config.fleet.units) if u.path == path}
        )
        if len(users) > 1:
            held.append(
                f"read by units running as {', '.join(users)}: give them one group, "
                f"then chgrp GROUP {path} && chmod 640 {path}"
            )
        else:
            actions.append(SecureFile(path, users[0] if users else "root"))
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


def _proven_rewrite(path: str, is_secret: Callable[[str], bool]) -> tuple[str, str] | None:
    """The rewritten text and its diff (secret values masked), when systemd's reading of it is
    the intended one."""
    try:
        with open(path, encoding="utf-8", newline="") as handle:
            original = handle.read()
    except (OSError, UnicodeDecodeError):
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


def plan_quarantine(finding: Finding, planning: Planning) -> Repair:
    """QT504: move the garbage records (not pending in any group) out of the stream."""
    from qtctl.checks.trade_records import garbage, pending_ids

    adapter = planning.ctx.redis()
    with adapter.guard("planning the quarantine"):
        count = planning.ctx.config.daemons.trade_scan
        entries = adapter.client.xrevrange(finding.subject, count=count)
        pending = pending_ids(adapter.client, finding.subject)
    reasons = tuple(
        (entry_id, reason)
        for entry_id, reason, _ in garbage(planning.ctx, entries)
        if entry_id not in pending
    )
    if not reasons:
        return Repair(finding, held="every garbage record is pending in a consumer group")
    held = (
        ""
        if planning.options.unsafe
        else (
            "deleting entries from a stream consumers read needs --unsafe (they are archived and "
            "kept in the quarantine stream)"
        )
    )
    return Repair(
        finding,
        (QuarantineEntries(finding.subject, reasons),),
        held=held,
        manual="fix the producer named in the detail, or the garbage comes back",
    )


def plan_health_restart(finding: Finding, planning: Planning) -> Repair:
    """QT701: restart the unit, under the same rules as QT101's restart."""
    unit = planning.units.get(finding.subject)
    if unit is None:
        return Repair(finding, held="unit is no longer loaded (or systemd is unreachable)")
    ours = planning.restarts.get(unit.name, 0.0)
    again = ""
    if ours and time.time() - ours < HEALTH_RECHECK_SEC:
        when = time.strftime("%H:%M:%S UTC", time.gmtime(ours))
        again = (
            f"qtctl fix restarted it at {when} and its health still fails: a restart does "
            "not cure it; read its journal"
        )
    held = (
        never_restart(unit, planning.ctx.config)
        or again
        or restart_permission(unit, planning.options, planning.live)
    )
    return Repair(finding, (Restart(unit.name),), held=held)
