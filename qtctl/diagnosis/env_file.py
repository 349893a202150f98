"""EnvironmentFile= as systemd 252 reads it, and the lines it reads differently than intended.

`systemd_parse` ports the state machine of systemd's env-file parser (src/basic/env-file.c,
parse_env_file_internal): quotes, backslash continuation, values that run on across lines when a
quote is never closed, no inline comments, CR as a line end. It works on bytes, one regex step per
run of ordinary characters, so it is linear in the file size. A file systemd refuses to load
(load_env_file fails, the unit fails with Result=resources) raises `EnvFileRefused`: a NUL byte
anywhere (read_full_stream: EBADMSG), more than 64 MiB (E2BIG), invalid UTF-8 in a key or value
that is pushed (EINVAL). Line numbers are those of the shared read_line port.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass

from qtctl.diagnosis.env_parse import EnvFileRefused, Parsed, parse
from qtctl.diagnosis.lines import LineIndex

__all__ = ["Assignment", "EnvFileRefused", "Misread", "environment", "load", "systemd_parse"]

NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
ARG_MAX = 2 * 1024 * 1024
MAX_ARG_STRLEN = 32 * 4096  # execve(2): one `KEY=value` string, its NUL included
QUOTE_OR_HASH = re.compile(r"""['"#]""")
OPEN_QUOTE = re.compile(r"""\\.|'[^']*(')?|"[^"\\]*(?:\\.[^"\\]*)*(")?""", re.DOTALL)


@dataclass(frozen=True)
class Assignment:
    """One `KEY=value` systemd pushes, with the physical lines it came from (1-based)."""

    key: str
    value: str
    first_line: int
    last_line: int

    @property
    def valid(self) -> bool:
        """Whether systemd keeps it (it ignores, with a log line, names that are not valid)."""
        return bool(NAME.fullmatch(self.key)) and len(self.value) <= ARG_MAX - 3


@dataclass(frozen=True)
class Misread:
    """A line systemd reads differently from what its writer meant."""

    line: int
    kind: str  # inline-comment, export-prefix, invalid-name, unbalanced-quote, value-too-long, crlf
    key: str
    what: str


def _data(text: str | bytes) -> bytes:
    return text if isinstance(text, bytes) else text.encode("utf-8", "surrogateescape")


@functools.lru_cache(maxsize=4)
def _parsed(text: str | bytes) -> Parsed:
    """One parse per text, shared by environment(), misreads() and intended()."""
    return parse(_data(text))


def systemd_parse(text: str | bytes) -> list[Assignment]:
    """Every assignment in the order systemd's parser pushes it (invalid names included).

    Raises EnvFileRefused for a file systemd refuses as a whole."""
    parsed = _parsed(text)
    if parsed.refused is not None:
        raise parsed.refused
    return [Assignment(*a) for a in parsed.assignments]


def refusal(text: str | bytes) -> EnvFileRefused | None:
    """Why systemd refuses the file as a whole (the unit then fails), or None."""
    return _parsed(text).refused


def environment(text: str | bytes) -> dict[str, str]:
    """The variables a unit gets from this file (later assignments win; none if refused)."""
    if refusal(text) is not None:
        return {}
    return {a.key: a.value for a in systemd_parse(text) if a.valid}


def load(text: str | bytes) -> dict[str, str]:
    """Like environment(), but raises EnvFileRefused as systemd's load_env_file fails."""
    return {a.key: a.value for a in systemd_parse(text) if a.valid}


def misreads(text: str | bytes) -> list[Misread]:
    """Lines whose effect under systemd differs from the writer's evident intent (none for a
    file systemd refuses: nothing of it is read)."""
    if refusal(text) is not None:
        return []
    lines = _parsed(text).lines
    found = [m for a in systemd_parse(text) if (m := _misread(a, lines)) is not None]
    data = _parsed(text).data
    crlf = data.count(b"\r\n")
    if crlf:
        first = lines.number(data.index(b"\r\n"))
        found.append(
            Misread(
                first,
                "crlf",
                "",
                f"CRLF line endings on {crlf} "
                "line(s): systemd strips the CR, but a shell that sources the "
                "file gets every value ending in \\r",
            )
        )
    return sorted(found, key=lambda m: m.line)


def _misread(a: Assignment, lines: LineIndex) -> Misread | None:
    raw = _raw_line(lines, a.first_line)
    if a.key.startswith(("export ", "export\t")):
        name = a.key[7:].strip()
        what = f"ignored: systemd has no `export`, so {name} is never set"
        return Misread(a.first_line, "export-prefix", name, what)
    if not NAME.fullmatch(a.key):
        what = f"ignored: {a.key!r} is not a valid variable name"
        return Misread(a.first_line, "invalid-name", a.key, what)
    size = len(a.value) if a.value.isascii() else len(a.value.encode("utf-8", "surrogateescape"))
    if len(a.key) + size + 2 > MAX_ARG_STRLEN:
        effect = "systemd drops it" if not a.valid else "the kernel refuses to start the program"
        what = f"{a.key} is {size} bytes, over the 128 KiB the kernel allows one variable: {effect}"
        return Misread(a.first_line, "value-too-long", a.key, what)
    if a.last_line > a.first_line and _opens_quote(raw):
        what = (
            f"a quote opened here is closed only on line {a.last_line}: "
            f"{a.key} swallows lines {a.first_line + 1}-{a.last_line}"
        )
        return Misread(a.first_line, "unbalanced-quote", a.key, what)
    if _inline_comment(raw):
        comment = raw[_comment_start(raw, raw.index("=")) :].strip()  # never the value
        what = f"{a.key} includes the comment {comment!r}: systemd has no inline comments"
        return Misread(a.first_line, "inline-comment", a.key, what)
    return None


def _raw_line(lines: LineIndex, number: int) -> str:
    return lines.text(number).decode("utf-8", "surrogateescape")


def _opens_quote(line: str) -> bool:
    """Whether the value part of a line leaves a quote open (backslash escapes honoured)."""
    _, _, value = line.partition("=")
    for match in OPEN_QUOTE.finditer(value):
        token = match.group(0)
        if token[0] in "'\"" and match.group(1) is None and match.group(2) is None:
            return True
    return False


def _inline_comment(line: str) -> bool:
    """An unquoted ` #` after the value: a shell would drop it, systemd keeps it."""
    equals = line.find("=")
    return equals >= 0 and _comment_start(line, equals) < len(line)


def _comment_start(line: str, after: int) -> int:
    """Where an unquoted ` #` starts after `after` (quotes skipped whole), else the length."""
    pos = after + 1
    while (match := QUOTE_OR_HASH.search(line, pos)) is not None:
        found = match.start()
        if match.group(0) == "#":
            if line[found - 1] in " \t":
                return found
            pos = found + 1
            continue
        close = line.find(match.group(0), found + 1)
        if close < 0:
            break
        pos = close + 1
    return len(line)


def _lines_of(text: str | bytes) -> tuple[list[str], bool]:
    """The physical lines as text, and whether the last one had an end marker."""
    lines, data = _parsed(text).lines, _parsed(text).data
    found = [_raw_line(lines, n) for n in range(1, len(lines) + 1)] if data else []
    return found, data.endswith((b"\n", b"\r", b"\0"))


def rewrite(text: str | bytes) -> tuple[str, list[Misread]]:
    """Text that systemd reads as intended, and the misreads it could not repair.

    Inline comments move to their own line above, `export ` is dropped, CRLF becomes LF;
    unbalanced quotes and invalid names need a person. A refused file is left as it is.
    """
    if refusal(text) is not None:
        return _data(text).decode("utf-8", "surrogateescape"), []
    problems = misreads(text)
    by_line = {m.line: m for m in problems if m.kind in ("inline-comment", "export-prefix")}
    left = [m for m in problems if m.kind in ("unbalanced-quote", "invalid-name")]
    lines, terminated = _lines_of(text)
    out = []
    for number, raw in enumerate(lines, 1):
        problem = by_line.get(number)
        if problem is None:
            out.append(raw)
        elif problem.kind == "export-prefix":
            out.append(re.sub(r"^(\s*)export\s+", r"\1", raw))
        else:
            cut = _comment_start(raw, raw.index("="))
            out.append(raw[cut:].strip())
            out.append(raw[:cut].rstrip())
    return "\n".join([*out, ""] if terminated else out), left


def intended(text: str | bytes) -> dict[str, str]:
    """What the writer meant, line by line: systemd's reading, except that a repairable line
    counts as its value without the inline comment, or without `export`."""
    values = environment(text)
    lines = _parsed(text).lines
    for problem in misreads(text):
        raw = _raw_line(lines, problem.line)
        if problem.kind == "export-prefix":
            values.update(environment(re.sub(r"^\s*export\s+", "", raw)))
        elif problem.kind == "inline-comment":
            values.update(environment(raw[: _comment_start(raw, raw.index("="))]))
    return values


ASSIGNMENT = re.compile(r"^(\s*(?:export\s+)?)([^=\s]+)(\s*=)(.*)$")


def masked(text: str, is_secret: Callable[[str], bool]) -> str:
    """The text with the value of every secret-named variable replaced by ****, as systemd reads
    it: the whole rest of the line (systemd has no inline comments) and every line the value runs
    on to (a backslash continuation, an open quote) as ****; comment lines kept (so a diff of two
    versions shows what changed without showing a secret)."""
    out = []
    hidden = _value_lines(text, is_secret)
    number = 1  # systemd's line number: a lone CR ends a line too
    for line in text.replace("\r\n", "\n").split("\n"):
        match = ASSIGNMENT.match(line)
        lines = range(number, number + line.count("\r") + 1)
        if match and is_secret(match.group(2)):
            line = f"{match.group(1)}{match.group(2)}{match.group(3)}****"
        elif hidden.intersection(lines):
            line = "****"
        out.append(line)
        number = lines.stop
    return "\n".join(out)


def _value_lines(text: str, is_secret: Callable[[str], bool]) -> set[int]:
    """The lines after the first that a secret's value runs on to."""
    try:
        found = systemd_parse(text)
    except EnvFileRefused:  # no reading of it to follow: hide every line after a secret
        first = min((a.first_line for a in _loose(text) if is_secret(a.key)), default=0)
        return set(range(first + 1, text.count("\n") + text.count("\r") + 2)) if first else set()
    spans = (range(a.first_line + 1, a.last_line + 1) for a in found if is_secret(a.key))
    return {line for span in spans for line in span}


def _loose(text: str) -> list[Assignment]:
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    found = (ASSIGNMENT.match(line) for line in lines)
    return [Assignment(m.group(2), "", n, n) for n, m in enumerate(found, 1) if m]
