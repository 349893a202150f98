"""EnvironmentFile= as systemd 252 reads it, and the lines it reads differently than intended.

`systemd_parse` ports the state machine of systemd's env-file parser (src/basic/env-file.c):
quotes, backslash continuation, values that run on across lines when a quote is never closed,
no inline comments, CR as a line end. A test checks it against the real systemd in the sandbox.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

NEWLINE = "\n\r"
WHITESPACE = " \t\n\r"
COMMENTS = "#;"
SHELL_NEED_ESCAPE = '"\\`$'
NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


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
        return bool(NAME.fullmatch(self.key)) and "\0" not in self.value


@dataclass(frozen=True)
class Misread:
    """A line systemd reads differently from what its writer meant."""

    line: int
    kind: str  # inline-comment, export-prefix, invalid-name, unbalanced-quote, crlf
    key: str
    what: str


def systemd_parse(text: str) -> list[Assignment]:
    """Every assignment in the order systemd's parser pushes it (invalid names included)."""
    return _Parser(text).run()


def environment(text: str) -> dict[str, str]:
    """The variables a unit gets from this file (later assignments win)."""
    return {a.key: a.value for a in systemd_parse(text) if a.valid}


class _Parser:
    """A character-by-character port; one method per state keeps each one small."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.state = "pre_key"
        self.key: list[str] = []
        self.value: list[str] = []
        self.key_ws = -1  # index where trailing whitespace of the key starts
        self.value_ws = -1
        self.line = 1
        self.start = 1
        self.out: list[Assignment] = []

    def run(self) -> list[Assignment]:
        text = self.text
        for index, c in enumerate(text):
            crlf_tail = c == "\n" and index and text[index - 1] == "\r"
            getattr(self, "_" + self.state)(c)
            if c in NEWLINE and not crlf_tail:
                self.line += 1
        if self.state in ("pre_value", "value", "value_escape", "sq", "dq", "dq_escape"):
            self._push(strip_value=self.state == "value")
        return self.out

    def _push(self, strip_value: bool) -> None:
        key = "".join(self.key[: self.key_ws] if self.key_ws >= 0 else self.key)
        value = self.value[: self.value_ws] if strip_value and self.value_ws >= 0 else self.value
        self.out.append(Assignment(key, "".join(value), self.start, self.line))
        self.key, self.value = [], []

    def _pre_key(self, c: str) -> None:
        if c in COMMENTS:
            self.state = "comment"
        elif c not in WHITESPACE:
            self.state, self.key, self.key_ws, self.start = "key", [c], -1, self.line

    def _key(self, c: str) -> None:
        if c in NEWLINE:
            self.state, self.key = "pre_key", []
        elif c == "=":
            self.state, self.value, self.value_ws = "pre_value", [], -1
        else:
            if c not in WHITESPACE:
                self.key_ws = -1
            elif self.key_ws < 0:
                self.key_ws = len(self.key)
            self.key.append(c)

    def _pre_value(self, c: str) -> None:
        if c in NEWLINE:
            self._push(strip_value=False)
            self.state = "pre_key"
        elif c == "'":
            self.state = "sq"
        elif c == '"':
            self.state = "dq"
        elif c == "\\":
            self.state = "value_escape"
        elif c not in WHITESPACE:
            self.state = "value"
            self.value.append(c)

    def _value(self, c: str) -> None:
        if c in NEWLINE:
            self._push(strip_value=True)
            self.state = "pre_key"
        elif c == "\\":
            self.state, self.value_ws = "value_escape", -1
        else:
            if c not in WHITESPACE:
                self.value_ws = -1
            elif self.value_ws < 0:
                self.value_ws = len(self.value)
            self.value.append(c)

    def _value_escape(self, c: str) -> None:
        self.state = "value"
        if c not in NEWLINE:  # an escaped newline is eaten: a continuation line
            self.value.append(c)

    def _sq(self, c: str) -> None:
        if c == "'":
            self.state = "pre_value"
        else:
            self.value.append(c)

    def _dq(self, c: str) -> None:
        if c == '"':
            self.state = "pre_value"
        elif c == "\\":
            self.state = "dq_escape"
        else:
            self.value.append(c)

    def _dq_escape(self, c: str) -> None:
        self.state = "dq"
        if c in SHELL_NEED_ESCAPE:
            self.value.append(c)
        elif c != "\n":
            self.value.extend(("\\", c))

    def _comment(self, c: str) -> None:
        if c == "\\":
            self.state = "comment_escape"
        elif c in NEWLINE:
            self.state = "pre_key"

    def _comment_escape(self, c: str) -> None:
        self.state = "comment"  # systemd < 254: a backslash continues the comment


def misreads(text: str) -> list[Misread]:
    """Lines whose effect under systemd differs from the writer's evident intent."""
    found: list[Misread] = []
    for a in systemd_parse(text):
        if a.key.startswith("export ") or a.key.startswith("export\t"):
            name = a.key[7:].strip()
            found.append(
                Misread(
                    a.first_line,
                    "export-prefix",
                    name,
                    f"ignored: systemd has no `export`, so {name} is never set",
                )
            )
        elif not a.valid:
            found.append(
                Misread(
                    a.first_line,
                    "invalid-name",
                    a.key,
                    f"ignored: {a.key!r} is not a valid variable name",
                )
            )
        elif a.last_line > a.first_line and _opens_quote(_raw_line(text, a.first_line)):
            found.append(
                Misread(
                    a.first_line,
                    "unbalanced-quote",
                    a.key,
                    f"a quote opened here is closed only on line {a.last_line}: "
                    f"{a.key} swallows lines {a.first_line + 1}-{a.last_line}",
                )
            )
        elif _inline_comment(_raw_line(text, a.first_line)):
            raw = _raw_line(text, a.first_line)
            comment = raw[_comment_start(raw, raw.index("=")) :].strip()  # never the value
            found.append(
                Misread(
                    a.first_line,
                    "inline-comment",
                    a.key,
                    f"{a.key} includes the comment {comment!r}: systemd has no inline comments",
                )
            )
    if "\r" in text:
        lines = sorted({n for n, raw in enumerate(text.split("\n"), 1) if raw.endswith("\r")})
        if lines:
            found.append(
                Misread(
                    lines[0],
                    "crlf",
                    "",
                    f"CRLF line endings on {len(lines)} "
                    "line(s): systemd strips the CR, but a shell that sources the "
                    "file gets every value ending in \\r",
                )
            )
    return sorted(found, key=lambda m: m.line)


def _raw_line(text: str, number: int) -> str:
    lines = text.split("\n")
    return lines[number - 1].rstrip("\r") if 0 < number <= len(lines) else ""


def _opens_quote(line: str) -> bool:
    """Whether the value part of a line leaves a quote open (backslash escapes honoured)."""
    _, _, value = line.partition("=")
    quote = ""
    escaped = False
    for c in value:
        if escaped:
            escaped = False
        elif c == "\\" and quote != "'":
            escaped = True
        elif quote and c == quote:
            quote = ""
        elif not quote and c in "'\"":
            quote = c
    return bool(quote)


def _inline_comment(line: str) -> bool:
    """An unquoted ` #` after the value: a shell would drop it, systemd keeps it."""
    equals = line.find("=")
    return equals >= 0 and _comment_start(line, equals) < len(line)


def rewrite(text: str) -> tuple[str, list[Misread]]:
    """Text that systemd reads as intended, and the misreads it could not repair.

    Inline comments move to their own line above, `export ` is dropped, CRLF becomes LF;
    unbalanced quotes and invalid names need a person.
    """
    problems = misreads(text)
    by_line = {m.line: m for m in problems if m.kind in ("inline-comment", "export-prefix")}
    left = [m for m in problems if m.kind in ("unbalanced-quote", "invalid-name")]
    out = []
    for number, raw in enumerate(text.replace("\r\n", "\n").split("\n"), 1):
        problem = by_line.get(number)
        if problem is None:
            out.append(raw)
        elif problem.kind == "export-prefix":
            out.append(re.sub(r"^(\s*)export\s+", r"\1", raw))
        else:
            value_start = raw.index("=")
            cut = _comment_start(raw, value_start)
            out.append(raw[cut:].strip())
            out.append(raw[:cut].rstrip())
    return "\n".join(out), left


def _comment_start(line: str, after: int) -> int:
    quote = ""
    for index in range(after + 1, len(line)):
        c = line[index]
        if quote:
            quote = "" if c == quote else quote
        elif c in "'\"":
            quote = c
        elif c == "#" and line[index - 1] in " \t":
            return index
    return len(line)


def intended(text: str) -> dict[str, str]:
    """What the writer meant, line by line: systemd's reading, except that a repairable line
    counts as its value without the inline comment, or without `export`."""
    values = environment(text)
    for problem in misreads(text):
        raw = _raw_line(text, problem.line)
        if problem.kind == "export-prefix":
            values.update(environment(re.sub(r"^\s*export\s+", "", raw)))
        elif problem.kind == "inline-comment":
            values.update(environment(raw[: _comment_start(raw, raw.index("="))]))
    return values


ASSIGNMENT = re.compile(r"^(\s*(?:export\s+)?)([^=\s]+)(\s*=)(.*)$")


def masked(text: str, is_secret: Callable[[str], bool]) -> str:
    """The text with the value of every secret-named variable replaced by ****, comments kept
    (so a diff of two versions shows what changed without showing a secret)."""
    out = []
    for line in text.replace("\r\n", "\n").split("\n"):
        match = ASSIGNMENT.match(line)
        if match and is_secret(match.group(2)):
            value = match.group(4)
            cut = _comment_start("=" + value, 0) - 1
            comment = value[cut:].strip()
            line = f"{match.group(1)}{match.group(2)}{match.group(3)}****" + (
                f" {comment}" if comment else ""
            )
        out.append(line)
    return "\n".join(out)
