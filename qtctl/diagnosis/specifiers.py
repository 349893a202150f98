"""systemd's `%` specifiers, expanded as the system manager of systemd 252 expands them.

Ported from src/shared/specifier.c (specifier_printf), src/core/unit-printf.c (which table a
setting uses) and src/basic/unit-name.c. Facts of the manager, not of the unit: `%u`/`%U`/`%g`/
`%G` are root/0 and `%h` is PID 1's home (`/root`) whatever the unit's `User=` says, exactly as
systemd.unit(5) documents and the sandbox's systemd shows. An unknown letter or digit after `%`
is an error (EBADSLT), any other character keeps the `%`; an empty expansion adds nothing.
"""

from __future__ import annotations

import functools
import os
import platform
import re
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from qtctl.errors import QtctlError

UNIT_NAME_MAX = 256
PATH_MAX = 4096
LONG_LINE_MAX = 1 << 20
VALID_NAME_CHARS = frozenset(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789:-_.\\@"
)
UNIT_TYPES = (
    *("service", "socket", "target", "device", "mount", "automount"),
    *("swap", "timer", "path", "slice", "scope"),
)
ARCHITECTURES = {
    "x86_64": "x86-64",
    "i686": "x86",
    "i386": "x86",
    "aarch64": "arm64",
    "armv7l": "arm",
    "ppc64le": "ppc64-le",
    "s390x": "s390x",
    "riscv64": "riscv64",
}
SPECIFIER = re.compile(r"%(.?)", re.DOTALL)
NAME_TABLE = frozenset("ijnNpaAbBHlqmMovwWgGuU")
FULL_TABLE = NAME_TABLE | frozenset("IJPfyYcrRCdELSthsTV")


class SpecifierError(QtctlError):
    """A value systemd cannot expand: an unknown specifier, a bad name, or too long."""


@dataclass(frozen=True)
class Specifiers:
    """What `%` resolves to for one unit: its name (an instance name for a template's instance),
    its fragment path, and the host facts the manager uses."""

    name: str
    fragment: str = ""
    host: Mapping[str, str] | None = None  # tests and the corpus pass fixed facts

    def expand(self, text: str, table: str = "full", limit: int = LONG_LINE_MAX) -> str:
        """`text` with every specifier replaced (`table`: "full" or "name")."""
        if "%" not in text:
            return _limited(text, limit)
        letters = FULL_TABLE if table == "full" else NAME_TABLE

        def one(match: re.Match[str]) -> str:
            letter = match.group(1)
            if letter in ("", "%"):
                return "%"
            if letter in letters:
                return self._lookup(letter)
            if letter.isascii() and letter.isalnum():
                raise SpecifierError(f"unknown specifier %{letter}")
            return match.group(0)

        return _limited(SPECIFIER.sub(one, text), limit)

    def _lookup(self, letter: str) -> str:
        unit = _UNIT_SPECIFIERS.get(letter)
        if unit is not None:
            return unit(self)
        facts = self.host if self.host is not None else host_facts()
        return facts.get(letter, "")

    @property
    def instance(self) -> str:
        """The instance of `name@instance.type` ('' when it is no instance)."""
        stem = self.name.rpartition(".")[0]
        return stem.partition("@")[2]


def _limited(text: str, limit: int) -> str:
    if len(text) > limit or len(text.encode("utf-8", "surrogateescape")) > limit:
        raise SpecifierError(f"expands to more than {limit} bytes")
    return text


def name_is_valid(name: str) -> bool:
    """unit_name_is_valid(name, UNIT_NAME_ANY): a plain name, an instance or a template."""
    stem, dot, kind = name.rpartition(".")
    if not dot or not stem or kind not in UNIT_TYPES or len(name.encode()) >= UNIT_NAME_MAX:
        return False
    return not stem.startswith("@") and all(c in VALID_NAME_CHARS for c in stem)


def prefix(name: str) -> str:
    """unit_name_to_prefix: before the `@`, or before the type suffix."""
    _require_valid(name)
    stem = name.rpartition(".")[0]
    return stem.partition("@")[0]


def unescape(text: str) -> str:
    """unit_name_unescape: `-` is `/`, `\\xNN` is that byte."""
    out = bytearray()
    index = 0
    while index < len(text):
        c = text[index]
        if c == "-":
            out += b"/"
        elif c == "\\":
            digits = text[index + 2 : index + 4]
            if text[index + 1 : index + 2] != "x" or not re.fullmatch(r"[0-9a-fA-F]{2}", digits):
                raise SpecifierError(f"bad escape in {text!r}")
            out.append(int(digits, 16))
            index += 3
        else:
            out += c.encode("utf-8", "surrogateescape")
        index += 1
    return out.decode("utf-8", "surrogateescape")


def path_unescape(text: str) -> str:
    """unit_name_path_unescape: the path an escaped name stands for (`-` alone is `/`)."""
    if not text:
        raise SpecifierError("empty path name")
    if text == "-":
        return "/"
    path = unescape(text)
    full = "/" + path
    if path.startswith("/") or path.endswith("/") or not _normalized(full):
        raise SpecifierError(f"{text!r} is no normalized path")
    return full


def _normalized(path: str) -> bool:
    parts = path.split("/")[1:]
    return "//" not in path and all(p not in (".", "..") for p in parts)


def _require_valid(name: str) -> None:
    if not name_is_valid(name):
        raise SpecifierError(f"{name!r} is no valid unit name")


def _prefix_and_instance(name: str) -> str:
    _require_valid(name)
    return name.rpartition(".")[0]


def _last_component(spec: Specifiers) -> str:
    return prefix(spec.name).rpartition("-")[2]


def _filename(spec: Specifiers) -> str:
    if spec.instance:
        return path_unescape(spec.instance)
    return path_unescape(prefix(spec.name))


def _real_path(spec: Specifiers) -> str:
    if not spec.fragment:
        raise SpecifierError("no fragment path")
    return os.path.realpath(spec.fragment)


_UNIT_SPECIFIERS: dict[str, Callable[[Specifiers], str]] = {
    "n": lambda s: s.name,
    "N": lambda s: _prefix_and_instance(s.name),
    "p": lambda s: prefix(s.name),
    "P": lambda s: unescape(prefix(s.name)),
    "i": lambda s: s.instance,
    "I": lambda s: unescape(s.instance),
    "j": _last_component,
    "J": lambda s: unescape(_last_component(s)),
    "f": _filename,
    "y": _real_path,
    "Y": lambda s: os.path.dirname(_real_path(s)),
    "c": lambda s: f"/system.slice/{s.name}",
    "r": lambda s: "/system.slice",
    "R": lambda s: "/",
    "d": lambda s: f"/run/credentials/{s.name}",
}


@functools.cache
def host_facts() -> Mapping[str, str]:
    """The manager's own specifiers, read once: host names, ids, os-release, PID 1's $HOME."""
    pid1 = _pid1_environment()
    release = _os_release()
    host = socket.gethostname() or "localhost"
    short = host.partition(".")[0]
    return {
        "a": ARCHITECTURES.get(platform.machine(), platform.machine()),
        "A": release.get("IMAGE_VERSION", ""),
        "b": _read_id("/proc/sys/kernel/random/boot_id"),
        "B": release.get("BUILD_ID", ""),
        "H": host,
        "l": short,
        "q": _machine_info().get("PRETTY_HOSTNAME", "") or short,
        "m": _read_id("/etc/machine-id"),
        "M": release.get("IMAGE_ID", ""),
        "o": release.get("ID", ""),
        "v": platform.release(),
        "w": release.get("VERSION_ID", ""),
        "W": release.get("VARIANT_ID", ""),
        "g": "root",
        "G": "0",
        "u": "root",
        "U": "0",
        "h": _absolute(pid1.get("HOME"), "/root"),
        "s": _absolute(pid1.get("SHELL"), "/bin/bash"),
        "C": "/var/cache",
        "E": "/etc",
        "L": "/var/log",
        "S": "/var/lib",
        "t": "/run",
        "T": _absolute(pid1.get("TMPDIR") or pid1.get("TEMP") or pid1.get("TMP"), "/tmp"),
        "V": _absolute(pid1.get("TMPDIR") or pid1.get("TEMP") or pid1.get("TMP"), "/var/tmp"),
    }


def _absolute(value: str | None, default: str) -> str:
    return os.path.normpath(value) if value and value.startswith("/") else default


def _pid1_environment() -> dict[str, str]:
    try:
        with open("/proc/1/environ", "rb") as handle:
            raw = handle.read()
    except OSError:
        return {}
    pairs = (item.decode("utf-8", "replace").partition("=") for item in raw.split(b"\0"))
    return {key: value for key, _, value in pairs if key}


def _read_id(path: str) -> str:
    try:
        with open(path) as handle:
            return handle.read().strip().replace("-", "")
    except OSError:
        return ""


def _os_release() -> dict[str, str]:
    return _env_file("/etc/os-release") or _env_file("/usr/lib/os-release")


def _machine_info() -> dict[str, str]:
    return _env_file("/etc/machine-info")


def _env_file(path: str) -> dict[str, str]:
    from qtctl.diagnosis.env_file import EnvFileRefused, load

    try:
        with open(path, "rb") as handle:
            return load(handle.read())
    except (OSError, EnvFileRefused):
        return {}


def name_from_path(path: str, suffix: str) -> str:
    """unit_name_from_path: the unit name for a path (`/var/lib/x` -> `var-lib-x.mount`);
    '' when the path cannot name a unit."""
    parts = [p for p in path.split("/") if p and p != "."]
    if not path.startswith("/") or ".." in parts:
        return ""
    if not parts:
        return "-" + suffix
    escaped = []
    for index, c in enumerate("/".join(parts)):
        if c == "/":
            escaped.append("-")
        elif (
            c in "-\\"
            or not (c.isascii() and (c.isalnum() or c in ":_."))
            or (index == 0 and c == ".")
        ):
            escaped += [f"\\x{b:02x}" for b in c.encode("utf-8", "surrogateescape")]
        else:
            escaped.append(c)
    name = "".join(escaped) + suffix
    return name if name_is_valid(name) else ""
