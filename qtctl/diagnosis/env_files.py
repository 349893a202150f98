"""The fleet's environment files: which units use them as whom, their modes, their secrets."""

from __future__ import annotations

import fnmatch
import grp
import hashlib
import os
import pwd
import re
import stat
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from qtctl.adapters import safe_walk
from qtctl.config import SecretSettings
from qtctl.diagnosis.env_file import environment
from qtctl.diagnosis.exec_targets import SHELL, ExecTarget, sourced_files
from qtctl.diagnosis.unit_load import LoadedUnit, fleet_on_disk
from qtctl.redaction import Redactor

DEFAULT_SECRETS = SecretSettings()
CREDENTIAL_NAME = re.compile(r"(?i)PASS|PWD|SECRET|CREDENTIAL|COOKIE|AUTH|PRIVATE")
BOOLEAN = re.compile(r"(?i)true|false|yes|no|on|off")
NUMBER = re.compile(r"[-+]?\d+(?:\.\d+)?")
PATH = re.compile(r"(?:~|\.{1,2})?/[\w.@%+/-]*")
URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s@]+")  # no userinfo: redaction caught that
REDIS_NAME = re.compile(r"[A-Za-z0-9_.{}-]+(?::[A-Za-z0-9_.{}*-]+)+")
KEY_PREFIX = re.compile(r"[A-Za-z0-9_.{}-]+(?::[A-Za-z0-9_.{}-]+)*:")  # `qt:cache:`
DOMAIN = re.compile(r"(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\.)+[a-z]{2,12}")  # example.com
HEADER = re.compile(r"[A-Z][a-z]*(?:-[A-Z][a-z]*)+")  # X-Api-Key, Authorization-Token
FIELD = re.compile(r"[a-z][a-z_]{0,23}")  # a lowercase word: a field, column, backend name
# The name's last word says what the value is: a length, a time, a header, a backend ...
DECLARED = re.compile(
    r"(?i)_(?:LENGTH|LEN|MIN|MAX|SEC|SECS|SECONDS|MS|TIMEOUT|TTL|DAYS|HOURS|MINUTES|COUNT"
    r"|SIZE|LIMIT|RETRIES|PORT|HEADER|PREFIX|SUFFIX|DOMAIN|BACKEND|PROVIDER|FIELD|COLUMN"
    r"|NAME|MODE|TYPE|HOST|ALGORITHM|ALG)$"
)


@dataclass(frozen=True)
class EnvUse:
    """One `EnvironmentFile=` line of one unit."""

    unit: str
    path: str
    optional: bool  # the `-` prefix: a missing file is not an error
    user: str  # User= of the unit ('' is root)
    where: str


@dataclass
class EnvFile:
    """One environment file on disk and every unit that reads it."""

    path: str
    uses: list[EnvUse] = field(default_factory=list)

    @property
    def users(self) -> list[str]:
        """The distinct users of the units reading it (root for none)."""
        return sorted({u.user or "root" for u in self.uses})


def env_uses(patterns: Sequence[str], loaded: Sequence[LoadedUnit] | None = None) -> list[EnvUse]:
    """Every EnvironmentFile= of every installed fleet unit and enabled template instance
    (drop-ins included), read as systemd reads it: one path per line, specifiers expanded;
    `loaded` is the run's `fleet_on_disk(patterns)` when the caller already has it."""
    uses = []
    for unit in fleet_on_disk(patterns) if loaded is None else loaded:
        user = "" if unit.value("DynamicUser") == "yes" else unit.value("User")
        for path, optional, directive in unit.environment_files():
            uses.append(EnvUse(unit.name, path, optional, user, directive.where))
    return uses


def env_files(uses: Sequence[EnvUse], dirs: Sequence[str]) -> list[EnvFile]:
    """Files named by units plus every *.env file in the configured directories."""
    files: dict[str, EnvFile] = {}
    for use in uses:
        files.setdefault(use.path, EnvFile(use.path)).uses.append(use)
    for folder in dirs:
        try:
            names = sorted(os.listdir(folder))
        except OSError:
            continue
        for name in names:
            path = os.path.join(folder, name)
            if name.endswith(".env") and os.path.isfile(path):
                files.setdefault(path, EnvFile(path))
    return sorted(files.values(), key=lambda f: f.path)


def shell_sourced(targets: Sequence[ExecTarget]) -> dict[str, str]:
    """Real path -> unit of every file a shell reads for a fleet unit: sourced by its `sh -c`
    command, or by the shell script it runs (`. FILE`, `source FILE`, a literal path). Such a
    file is read by the shell, as the service's user, not by systemd."""
    found: dict[str, str] = {}
    for target in targets:
        if target.script and target.reader == SHELL:
            for path in [target.script, *sourced_by(target.script)]:
                found.setdefault(os.path.realpath(path), target.unit)
    return found


def sourced_by(script: str) -> list[str]:
    """Files a shell script sources by a literal path: absolute, or relative to the script's
    folder or the two above it (a wrapper that `cd`s up first)."""
    text = safe_walk.read_head(script, 2**20).decode("utf-8", "replace")
    folder = os.path.dirname(script)
    bases = [folder, os.path.dirname(folder), os.path.dirname(os.path.dirname(folder))]
    paths = [p for line in text.splitlines() for p in sourced_files(line.strip())]
    return [os.path.normpath(os.path.join(b, p)) for p in paths if "$" not in p for b in bases]


def readable_by(path: str, user: str) -> bool:
    """Whether `user` may open the file for reading (mode bits along the path; root may)."""
    try:
        account = pwd.getpwnam(user)
    except KeyError:
        return False
    if account.pw_uid == 0:
        return True
    groups = {account.pw_gid} | {g.gr_gid for g in grp.getgrall() if user in g.gr_mem}
    parts = os.path.abspath(path).split("/")
    for depth in range(1, len(parts)):
        folder = "/".join(parts[:depth]) or "/"
        if not _allowed(folder, account.pw_uid, groups, stat.S_IXUSR, stat.S_IXGRP, stat.S_IXOTH):
            return False
    return _allowed(path, account.pw_uid, groups, stat.S_IRUSR, stat.S_IRGRP, stat.S_IROTH)


def _allowed(path: str, uid: int, groups: set[int], owner: int, group: int, other: int) -> bool:
    try:
        st = os.stat(path)
    except OSError:
        return False
    if st.st_uid == uid:
        return bool(st.st_mode & owner)
    if st.st_gid in groups:
        return bool(st.st_mode & group)
    return bool(st.st_mode & other)


def secret_names(keys: Sequence[str] | Mapping[str, str], patterns: Sequence[str]) -> list[str]:
    """Keys that hold a secret: by name (`*PASS*`, `*TOKEN*`, ...; case-blind), and by value too
    where the values are given (a `*KEY*` name holding a stream name is configuration, a URL
    with a password or a token-shaped value is a secret whatever its name)."""
    redactor = Redactor.of(patterns)
    if isinstance(keys, Mapping):
        return [
            key
            for key, value in keys.items()
            if redactor.is_secret(key, value) or redactor.text(value) != value
        ]
    return [key for key in keys if redactor.is_secret_name(key)]


def secret_digests(
    text: str | bytes, patterns: Sequence[str], settings: SecretSettings = DEFAULT_SECRETS
) -> dict[str, str]:
    """Secret key -> a digest of its value (the value itself never leaves this function)."""
    values = environment(text)  # nothing from a file systemd refuses
    return {
        key: hashlib.sha256(values[key].encode()).hexdigest()
        for key in judged_secrets(values, patterns, settings)
        if len(values[key]) >= 8  # placeholders and empty values are not shared secrets
    }


def judged_secrets(
    values: Mapping[str, str], patterns: Sequence[str], settings: SecretSettings = DEFAULT_SECRETS
) -> list[str]:
    """QT703's secrets, judged by name *and* value: a value that is plainly configuration (empty,
    a boolean, a number, a path, a URL without credentials, a Redis key or stream name) is not
    one under any name; a URL with a password, a token shape, a PEM block is one under any name;
    the allow lists of `secrets.*` win over both. Redaction masks more, on purpose."""
    redactor = Redactor.of(patterns)
    return [key for key, value in values.items() if _is_secret(key, value, redactor, settings)]


def _is_secret(name: str, value: str, redactor: Redactor, settings: SecretSettings) -> bool:
    if _globbed(name, settings.allow_names, fold=True) or _globbed(
        value, settings.not_secret_values
    ):
        return False
    if redactor.text(value) != value and not _url_without_password(value, redactor):
        return True  # a URL with a password, a token shape, a PEM block: whatever its name
    return redactor.is_secret(name, value) and not plain_configuration(name, value)


def _url_without_password(value: str, redactor: Redactor) -> bool:
    """`postgresql://qt@localhost/qt`: a user name but no password (nor a token as the user)."""
    scheme, sep, rest = value.partition("://")
    userinfo, at, host = rest.partition("@")
    plain = bool(sep and at and URL.fullmatch(f"{scheme}://{host}"))
    return plain and ":" not in userinfo and redactor.text(userinfo) == userinfo


def plain_configuration(name: str, value: str) -> str:
    """Why the value of `name` is configuration rather than a secret ('' when it may be one).
    Under a credential name (`*PASS*`, `*AUTH*`, ...), a number or a one-colon `user:secret` can
    be the credential itself, so only the unambiguous shapes count there."""
    credential = bool(CREDENTIAL_NAME.search(name))
    declared = bool(DECLARED.search(name))
    word = any(p.fullmatch(value) for p in (NUMBER, FIELD, HEADER, DOMAIN, KEY_PREFIX))
    shapes = (
        ("empty", not value.strip()),
        ("a boolean", bool(BOOLEAN.fullmatch(value))),
        ("a number", bool(NUMBER.fullmatch(value)) and not credential),
        (f"what its name's last word ({name.rsplit('_', 1)[-1]}) says", declared and word),
        ("a domain name", bool(DOMAIN.fullmatch(value))),
        ("a key prefix", bool(KEY_PREFIX.fullmatch(value))),
        (
            "a header or field name",
            bool(HEADER.fullmatch(value) or FIELD.fullmatch(value)) and not credential,
        ),
        ("a path", bool(PATH.fullmatch(value))),
        ("a URL without credentials", bool(URL.fullmatch(value))),
        ("a Redis key or stream name", _redis_name(value, credential)),
    )
    return next((why for why, seen in shapes if seen), "")


def _redis_name(value: str, credential: bool) -> bool:
    return bool(REDIS_NAME.fullmatch(value)) and value.count(":") >= (2 if credential else 1)


def _globbed(text: str, globs: Sequence[str], fold: bool = False) -> bool:
    if fold:
        return any(fnmatch.fnmatchcase(text.upper(), g.upper()) for g in globs)
    return any(fnmatch.fnmatchcase(text, g) for g in globs)
