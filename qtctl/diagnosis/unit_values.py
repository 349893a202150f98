"""What systemd 252 makes of one setting's value (the config_parse_* functions of load-fragment.c).

Each reader takes a raw value and the unit's specifiers and returns what systemd keeps, or raises
`BadValue` with systemd's reason: `fatal` when systemd refuses the unit for it (ENOEXEC, load state
bad-setting), otherwise the assignment (or a part of it) is ignored with a warning.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from qtctl.diagnosis.specifiers import (
    PATH_MAX,
    UNIT_NAME_MAX,
    SpecifierError,
    Specifiers,
    name_is_valid,
    prefix,
)
from qtctl.diagnosis.unit_words import (
    PLAIN,
    ExecSyntaxError,
    RawCommand,
    WordError,
    Words,
    exec_commands,
)

ARG_MAX = 2 * 1024 * 1024  # sysconf(_SC_ARG_MAX) with the default 8 MiB stack
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
BOOLEANS = {"1": True, "yes": True, "y": True, "true": True, "t": True, "on": True}
BOOLEANS |= {"0": False, "no": False, "n": False, "false": False, "f": False, "off": False}
SIZE = re.compile(r"\s*(\d+(\.\d+)?)\s*([KMGTPE]|B)?\s*", re.ASCII)
ENUMS = {
    "Type": {"simple", "forking", "oneshot", "dbus", "notify", "idle", "exec"},
    "Restart": {
        "no",
        "on-success",
        "on-failure",
        "on-abnormal",
        "on-watchdog",
        "on-abort",
        "always",
    },
    "KillMode": {"control-group", "process", "mixed", "none"},
    "ExitType": {"main", "cgroup"},
    "NotifyAccess": {"none", "main", "exec", "all"},
    "SuccessAction": {
        "none",
        "exit",
        "exit-force",
        "reboot",
        "reboot-force",
        "reboot-immediate",
        "poweroff",
        "poweroff-force",
        "poweroff-immediate",
        "soft-reboot",
        "soft-reboot-force",
        "kexec",
        "kexec-force",
        "halt",
        "halt-force",
        "halt-immediate",
    },
}
ENUMS["FailureAction"] = ENUMS["SuccessAction"]


@dataclass(frozen=True)
class BadValue(Exception):
    """Why systemd ignores a value (`fatal`: why it refuses the unit)."""

    reason: str
    fatal: bool = False


@dataclass(frozen=True)
class ExecCommand:
    """One command systemd will run: the program, argv (argv[0] included) and the prefixes."""

    path: str
    argv: tuple[str, ...]
    prefixes: str


def exec_line(value: str, spec: Specifiers) -> tuple[list[ExecCommand], list[BadValue]]:
    """The commands of one Exec*= value; a problem ends the line (what came before is kept)."""
    notes: list[str] = []
    try:
        raw, problem = exec_commands(value, notes), None
    except ExecSyntaxError as exc:
        raw, problem = list(exc.commands), BadValue(exc.message, exc.fatal)
    warned = [BadValue(note) for note in notes]
    commands = []
    for command in raw:
        try:
            commands.append(_command(command, spec))
        except BadValue as bad:
            fatal = bad.fatal and not command.ignore_failure
            return commands, [*warned, BadValue(bad.reason, fatal)]
    return commands, [*warned, problem] if problem else warned


def _command(raw: RawCommand, spec: Specifiers) -> ExecCommand:
    path = _expand(spec, raw.program, PATH_MAX - 1, fatal=True)
    if not path:
        raise BadValue("empty path in command line", True)
    if any(c < " " or c in "\"'\\\x7f" for c in path):
        raise BadValue(f"executable name contains special characters: {path}", True)
    if path.endswith("/"):
        raise BadValue(f"executable path specifies a directory: {path}", True)
    if not (_path_is_valid(path) if path.startswith("/") else _filename_is_valid(path)):
        raise BadValue(f"neither a valid executable name nor an absolute path: {path}", True)
    args = [_expand(spec, a, 1 << 20, fatal=True) for a in raw.args]
    argv = args if "@" in raw.prefixes else [path, *args]
    if not argv:
        raise BadValue("empty executable name or zeroeth argument", True)
    return ExecCommand(_simplify(path), tuple(argv), raw.prefixes)


def _expand(spec: Specifiers, text: str, limit: int, fatal: bool = False) -> str:
    try:
        return spec.expand(text, limit=limit)
    except SpecifierError as exc:
        raise BadValue(f"failed to resolve unit specifiers in {text!r}: {exc}", fatal) from None


def environment(value: str, spec: Specifiers) -> tuple[list[tuple[str, str]], list[BadValue]]:
    """Environment=: the KEY=VALUE words systemd keeps, and what it ignored."""
    kept: list[tuple[str, str]] = []
    problems: list[BadValue] = []
    words, pos = Words(), 0
    while True:
        try:
            word, pos = words.first(value, pos)
        except WordError:
            return kept, [*problems, BadValue(f"invalid syntax, ignoring: {value}")]
        if word is None:
            return kept, problems
        try:
            resolved = spec.expand(word, limit=ARG_MAX)
        except SpecifierError as exc:
            problems.append(BadValue(f"failed to resolve specifiers in {word}: {exc}"))
            continue
        name, eq, content = resolved.partition("=")
        if not eq or not env_name_valid(name) or not env_value_valid(content):
            problems.append(BadValue(f"invalid environment assignment, ignoring: {resolved}"))
            continue
        kept.append((name, content))


def env_name_valid(name: str) -> bool:
    """env_name_is_valid: letters, digits, `_`, not starting with a digit."""
    return bool(ENV_NAME.fullmatch(name)) and len(name) <= ARG_MAX - 2


def env_value_valid(value: str) -> bool:
    """env_value_is_valid: valid UTF-8 (no raw bytes) and below ARG_MAX."""
    return not any(0xDC80 <= ord(c) <= 0xDCFF for c in value) and len(value) <= ARG_MAX - 3


def env_file(value: str, spec: Specifiers) -> tuple[str, bool]:
    """EnvironmentFile=: (path, optional); the whole value is one path, `-` makes it optional."""
    expanded = _expand(spec, value, PATH_MAX)
    optional = expanded.startswith("-")
    path = expanded[1:] if optional else expanded
    return _checked_path(path, "EnvironmentFile"), optional


def working_directory(value: str, spec: Specifiers) -> str:
    """WorkingDirectory=: the path ('~' for the user's home), `!` first when `-` made it optional
    (as systemd shows it on D-Bus)."""
    optional = value.startswith("-")
    rest = value[1:] if optional else value
    mark = "!" if optional else ""
    if rest == "~":
        return mark + "~"
    try:
        path = _checked_path(_expand(spec, rest, PATH_MAX - 1), "WorkingDirectory")
    except BadValue as bad:
        raise BadValue(bad.reason, fatal=not optional) from None
    return mark + path


def _checked_path(path: str, key: str) -> str:
    if not path.startswith("/"):
        raise BadValue(f"{key}= path is not absolute: {path}")
    simple = _simplify(path)
    if not _path_is_valid(simple) or ".." in simple.split("/"):
        raise BadValue(f"{key}= path is not valid or not normalized: {path}")
    return simple


def user(value: str, spec: Specifiers) -> str:
    """User=/Group=: a user name or numeric id (systemd refuses the unit for anything else)."""
    name = _expand(spec, value, 1 << 20, fatal=True)
    if not user_name_valid(name):
        raise BadValue(f"invalid user/group name or numeric ID: {name}", True)
    return name


def user_name_valid(name: str) -> bool:
    """valid_user_group_name() in relaxed mode, numeric ids allowed."""
    if name.isascii() and name.isdigit():
        return int(name) < 2**32 - 1 and int(name) != 65535
    if not name or name != name.strip(" ") or any(c < " " or c == "\x7f" for c in name):
        return False
    if any(0xDC80 <= ord(c) <= 0xDCFF for c in name) or set(name) & set(":/"):
        return False
    digits = name[1:] if name.startswith("-") else name
    return not (digits.isascii() and digits.isdigit()) and name not in (".", "..")


def dependencies(value: str, spec: Specifiers) -> tuple[list[str], list[BadValue]]:
    """Requires=/Wants=/After=...: unit names (templates instantiated), and what was ignored."""
    names, problems = [], []
    for word in PLAIN.split(value):
        try:
            name = spec.expand(word, table="name", limit=UNIT_NAME_MAX)
        except SpecifierError as exc:
            problems.append(BadValue(f"failed to resolve unit specifiers in {word!r}: {exc}"))
            continue
        if not name_is_valid(name) or _template_target(name, spec) is None:
            problems.append(BadValue(f"failed to add dependency on {name}, ignoring"))
            continue
        names.append(_template_target(name, spec) or name)
    return names, problems


def _template_target(name: str, spec: Specifiers) -> str | None:
    stem, _, kind = name.rpartition(".")
    if not stem.endswith("@"):
        return name
    instance = spec.instance or prefix(spec.name)
    built = f"{stem}{instance}.{kind}"
    return built if name_is_valid(built) else None


def boolean(value: str) -> bool:
    """parse_boolean."""
    try:
        return BOOLEANS[value.lower()]
    except KeyError:
        raise BadValue(f"failed to parse boolean value, ignoring: {value}") from None


def yes_no(value: str) -> str:
    """A boolean setting, as `yes` or `no` (an empty value is invalid, not a reset)."""
    return "yes" if boolean(value) else "no"


def fatal_yes_no(value: str) -> str:
    """A boolean systemd refuses the unit over (DynamicUser=: config_parse_bool, fatal)."""
    try:
        return yes_no(value)
    except BadValue as bad:
        raise BadValue(bad.reason, True) from None


def protect_home(value: str) -> str:
    """ProtectHome=: yes/no (any boolean spelling), read-only or tmpfs."""
    if value in ("read-only", "tmpfs"):
        return value
    return yes_no(value)


def kill_mode(value: str) -> str:
    """KillMode=: an empty value resets it to control-group."""
    return enum("KillMode")(value) if value else ""


def size(value: str) -> str:
    """MemoryMax=-style: bytes with a K/M/G/T/P/E suffix, a percentage, or infinity (an empty
    value resets it)."""
    if not value or value == "infinity" or re.fullmatch(r"\d+(\.\d+)?%", value, re.ASCII):
        return value
    if SIZE.fullmatch(value):
        return value
    raise BadValue(f"invalid memory limit, ignoring: {value}")


def percent(value: str) -> str:
    """CPUQuota=: a percentage above 0 (an empty value resets it)."""
    if not value:
        return value
    match = re.fullmatch(r"(\d+(\.\d+)?)%", value, re.ASCII)
    if not match or float(match.group(1)) <= 0:
        raise BadValue(f"invalid CPU quota '{value}', ignoring")
    return value


def enum(key: str) -> Callable[[str], str]:
    """A reader that accepts one of the key's names."""

    def read(value: str) -> str:
        if value in ENUMS[key]:
            return value
        raise BadValue(f"failed to parse {key}= value, ignoring: {value}")

    return read


def _simplify(path: str) -> str:
    parts = [p for p in path.split("/") if p and p != "."]
    if path.startswith("/"):
        return "/" + "/".join(parts)
    return "/".join(parts) or "."


def _path_is_valid(path: str) -> bool:
    raw = path.encode("utf-8", "surrogateescape")
    return 0 < len(raw) < PATH_MAX and all(len(p) <= 255 for p in raw.split(b"/"))


def _filename_is_valid(name: str) -> bool:
    raw = name.encode("utf-8", "surrogateescape")
    return bool(raw) and name not in (".", "..") and b"/" not in raw and len(raw) <= 255
