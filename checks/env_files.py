"""QT703: environment files that are missing, misread by systemd, or leak secrets."""

from __future__ import annotations

import os
import pwd
import stat
from collections import defaultdict
from collections.abc import Iterator, Sequence

from qtctl.adapters import safe_files
from qtctl.config import SecretSettings
from qtctl.diagnosis.env_file import environment, misreads, refusal, rewrite
from qtctl.diagnosis.env_files import (
    EnvFile,
    EnvUse,
    env_files,
    env_uses,
    judged_secrets,
    readable_by,
    secret_digests,
    shell_sourced,
)
from qtctl.diagnosis.exec_targets import exec_targets
from qtctl.diagnosis.fleet import loaded_units
from qtctl.engine.check import Check
from qtctl.engine.context import CheckContext
from qtctl.engine.facts import EnvFileFacts
from qtctl.engine.findings import CodeDoc, Finding, Severity

REPAIRABLE = frozenset({"inline-comment", "export-prefix", "crlf"})
FIXABLE_CAUSES = REPAIRABLE | {"secrets-readable"}
MAX_ENV_BYTES = 4 * 2**20
ENV_FILES = CodeDoc(
    code="QT703",
    title="environment file problems",
    severity="error/warning",
    meaning="For every EnvironmentFile= of a fleet unit and every *.env file in "
    "services.env_dirs: the file is missing without the `-` prefix (error: the unit cannot "
    "start); secrets in a file other users can read (error), judged by name and value: a name "
    "matching services.secret_patterns (*PASS*, *SECRET*, *TOKEN*, *KEY*, *PRIVATE*, "
    "*CREDENTIAL*, AUTH*) whose value is not plainly configuration (empty, a boolean, a path, a "
    "URL without credentials, a number or a Redis key/stream name such as quantum:stream:x; "
    "under a credential name a number or a one-colon user:secret still counts), or any value "
    "that is a URL with a password, a token shape or a PEM block; secrets.allow_names and "
    "secrets.not_secret_values exempt more (see docs/precision.md); a file only systemd reads "
    "needs no access for the unit's User= (systemd reads EnvironmentFile= as root), one a "
    "unit's shell sources does (unreadable-by-user); lines "
    "systemd reads differently than meant: inline comments (kept in the value), `export` (the "
    "line is ignored), an unclosed quote (swallows the following lines), invalid names, CRLF "
    "(systemd strips it, so only when a shell of a fleet unit sources the file, or no unit "
    "reads it); the same secret value in "
    "several files (the files are named, never the value; said only when every owner of one of "
    "the files may read them all, so a planted guess learns nothing); a file reached through a "
    "symlink another user can write, or that is not a plain file, is not read (unsafe-path: "
    "systemd reads EnvironmentFile= as root, so whoever can change the link chooses the unit's "
    "environment); a file systemd refuses to load at all (rejected-by-systemd, per unit: a NUL "
    "byte, invalid UTF-8 in a key or value, more than 64 MiB) gives the unit no variables: "
    "without the `-` prefix the unit fails with Result=resources (error; its QT101 names the "
    "same unit), with it systemd starts the unit without them (warning).",
    why="A stray ` # comment` silently becomes part of an API key; a world-readable exchange key "
    "is one `cat` away from anyone on the host; copies of one key in five files rot apart.",
    fix="`qtctl fix --apply` makes secrets files mode 600, owner unchanged; with "
    "--unsafe it also rewrites misread lines (comment moved above, `export` dropped, LF), "
    "backed up and undoable. Keep one copy of each secret (or LoadCredential=).",
    repair=EnvFileFacts,
)


def run(ctx: CheckContext) -> Iterator[Finding]:
    """Missing files per unit, then each file's mode, readability, syntax; then duplicates."""
    settings = ctx.config.services
    uses = env_uses(ctx.config.fleet.units, loaded_units(ctx))
    for use in uses:
        if not use.optional and not os.path.exists(use.path):
            yield Finding(
                ENV_FILES.code,
                Severity.ERROR,
                use.unit,
                f"EnvironmentFile={use.path} does not exist (no `-` prefix): the unit cannot start",
                cause="missing",
                detail=(f"set in {use.where}",),
                fix_hint=ENV_FILES.fix,
            )
    digests: dict[str, list[tuple[str, str]]] = defaultdict(list)
    owners: dict[str, int] = {}
    units = ctx.config.fleet.units
    targets = ctx.memo("exec_targets", lambda: exec_targets(units, loaded_units(ctx)))
    sourced = shell_sourced(targets)
    users = {unit.name: unit.value("User") or "root" for unit in loaded_units(ctx)}
    for env in env_files(uses, settings.env_dirs):
        try:
            read = _read(env.path)
        except safe_files.UnsafePath as exc:
            yield _not_inspected(env, str(exc))
            continue
        if read is None:
            continue
        text, owners[env.path] = read
        yield from _rejected(env, text)
        secrets = secret_digests(text, settings.secret_patterns, ctx.config.secrets)
        for key, digest in secrets.items():
            digests[digest].append((env.path, key))
        sourcer = sourced.get(os.path.realpath(env.path), "")
        shell = (sourcer, users.get(sourcer, "root")) if sourcer or not env.uses else None
        finding = _file_finding(env, text, settings.secret_patterns, ctx.config.secrets, shell)
        if finding:
            yield finding
    yield from _duplicates(digests, owners)


def _read(path: str) -> tuple[bytes, int] | None:
    """(bytes, owner uid), read as root without following a link the fleet user could have
    planted (nor blocking on a FIFO swapped in): root-only files never reach a report through a
    link, and the owner is that of the inode read. The bytes, as systemd reads them: a NUL or
    invalid UTF-8 decides whether it loads the file at all."""
    try:
        return safe_files.read_owned_for_check(os.path.abspath(path), MAX_ENV_BYTES)
    except OSError:
        return None


def _rejected(env: EnvFile, data: bytes) -> Iterator[Finding]:
    """One finding per unit reading a file systemd refuses to load (none when it loads it)."""
    refused = refusal(data)
    if refused is None:
        return
    what = f"systemd refuses EnvironmentFile={env.path}: {refused.reason}"
    said = f"systemd says: Failed to load environment files: {refused.errno_text}"
    for use in env.uses or [EnvUse("", env.path, False, "", "")]:
        effect = _refusal_effect(use)
        yield Finding(
            ENV_FILES.code,
            Severity.WARNING if use.optional or not use.unit else Severity.ERROR,
            use.unit or env.path,
            f"{what}: {effect}",
            cause="rejected-by-systemd",
            detail=tuple(x for x in (said, f"set in {use.where}" if use.where else "") if x),
            fix_hint="remove the NUL bytes or re-encode the file as UTF-8 (`iconv -t UTF-8`), "
            "then restart the unit",
        )


def _refusal_effect(use: EnvUse) -> str:
    if not use.unit:
        return "a unit reading it could not start"
    if use.optional:
        return "the `-` prefix makes systemd start the unit without any of its variables"
    return "the unit cannot start (Result=resources)"


def _not_inspected(env: EnvFile, why: str) -> Finding:
    read_by = ", ".join(sorted({u.unit for u in env.uses}))
    detail = (
        (
            f"systemd reads EnvironmentFile= as root for {read_by}: whoever can change this "
            "link chooses what the unit's environment holds",
        )
        if read_by
        else ()
    )
    return Finding(
        ENV_FILES.code,
        Severity.WARNING,
        env.path,
        f"not inspected: {why}",
        cause="unsafe-path",
        detail=detail,
        fix_hint="point EnvironmentFile= at the real file, in a folder only root can write",
    )


def _file_finding(
    env: EnvFile,
    text: bytes,
    patterns: Sequence[str],
    secrets: SecretSettings,
    shell: tuple[str, str] | None,
) -> Finding | None:
    """One finding per file: its mode, how systemd reads it (CRLF only where a shell may read
    it, `shell`: (the unit whose shell sources it, its user), or ('', '') for no known reader;
    systemd strips the CR). Readability only for that shell's user: systemd reads
    EnvironmentFile= as root before it drops privileges."""
    try:
        mode = stat.S_IMODE(os.stat(env.path).st_mode)
    except OSError:  # removed since it was read
        return None
    problems = [
        *_exposure(mode, judged_secrets(environment(text), patterns, secrets)),
        *(p for p in _syntax(text) if shell or p[0] != "crlf"),
        *_unreadable(env.path, shell),
    ]
    if not problems:
        return None
    causes = list(dict.fromkeys(cause for cause, _ in problems))
    _, left = rewrite(text)
    units = ", ".join(sorted({u.unit for u in env.uses})) or "no unit (in services.env_dirs)"
    return Finding(
        ENV_FILES.code,
        Severity.ERROR if "secrets-readable" in causes else Severity.WARNING,
        env.path,
        f"{', '.join(causes)} (read by {units})",
        cause=",".join(causes),
        detail=(
            *(line for _, line in problems),
            *(f"needs a person: line {m.line}: {m.kind}" for m in left),
        ),
        fix_hint=ENV_FILES.fix,
        facts=EnvFileFacts(env.path, tuple(causes)) if set(causes) & FIXABLE_CAUSES else None,
    )


def _exposure(mode: int, secrets: list[str]) -> list[tuple[str, str]]:
    if secrets and mode & 0o004:
        return [("secrets-readable", f"mode {mode:04o}: any user can read {', '.join(secrets)}")]
    return []


def _unreadable(path: str, shell: tuple[str, str] | None) -> list[tuple[str, str]]:
    unit, user = shell or ("", "")
    if not unit or readable_by(path, user):
        return []
    return [("unreadable-by-user", f"not readable by {user}: a shell of {unit} sources it")]


def _syntax(text: bytes) -> list[tuple[str, str]]:
    found = []
    for problem in misreads(text):
        where = f"line {problem.line}" + (f" ({problem.key})" if problem.key else "")
        found.append((problem.kind, f"{where}: {problem.what}"))
    return found


def _duplicates(
    digests: dict[str, list[tuple[str, str]]], owners: dict[str, int]
) -> Iterator[Finding]:
    for places in digests.values():
        files = sorted({path for path, _ in places})
        if len(files) < 2 or not _owners_read_all(files, {owners[f] for f in files}):
            continue
        keys = sorted({key for _, key in places})
        yield Finding(
            ENV_FILES.code,
            Severity.WARNING,
            f"secret {'/'.join(keys)}",
            f"the same value of {'/'.join(keys)} is in {len(files)} files",
            cause="duplicate-secret",
            detail=tuple(f"{path}: {key}" for path, key in sorted(places)),
            fix_hint="keep the secret in one file (or a systemd credential) and point every "
            "unit at it; rotate it if a copy was ever readable",
        )


def _owners_read_all(files: list[str], owners: set[int]) -> bool:
    """A match is said only when every owner of one of the files (of the inodes read, so a name
    swapped for a link afterwards changes nothing) may read all of them: else the finding would
    tell a fleet user whether a guess equals a secret it cannot read."""
    for uid in owners - {0}:
        try:
            user = pwd.getpwuid(uid).pw_name
        except KeyError:
            return False
        if not all(readable_by(path, user) for path in files):
            return False
    return True


CHECK = Check(name="env_files", codes=(ENV_FILES,), run=run)
