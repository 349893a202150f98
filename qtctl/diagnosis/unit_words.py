"""Words of a unit-file value as systemd splits them: extract_first_word and ExecStart= lines.

Ports src/basic/extract-word.c (quotes may start mid-word, C escapes such as `\\x41`, `\\u00e9`,
`\\s` are decoded, a trailing backslash or an unclosed quote is an error) and the command loop of
config_parse_exec in src/core/load-fragment.c: a lone `;` (unquoted, followed by whitespace or the
end) separates commands, `\\;` is a literal `;` argument, `-@:+!` prefix the first word.
Raw bytes from `\\xNN` escapes are kept as surrogate escapes (`str` <-> `bytes` round-trips).
"""

from __future__ import annotations

from dataclasses import dataclass

WHITESPACE = " \t\n\r"
SIMPLE_ESCAPES = {
    "a": "\a",
    "b": "\b",
    "f": "\f",
    "n": "\n",
    "r": "\r",
    "t": "\t",
    "v": "\v",
    "\\": "\\",
    '"': '"',
    "'": "'",
    "s": " ",
}
HEX = frozenset("0123456789abcdefABCDEF")
OCTAL = frozenset("01234567")


class WordError(ValueError):
    """The value cannot be split: an unclosed quote or an invalid escape."""


@dataclass(frozen=True)
class Words:
    """How to split: systemd's ExtractFlags that matter for unit files."""

    unquote: bool = True
    cunescape: bool = True
    relax: bool = False  # EXTRACT_UNESCAPE_RELAX: keep unknown escapes verbatim
    retain_escape: bool = False  # EXTRACT_RETAIN_ESCAPE: a backslash is an ordinary character

    def first(self, text: str, pos: int) -> tuple[str | None, int]:
        """The word starting at or after `pos` and where the next one starts (None at the end)."""
        end = len(text)
        while pos < end and text[pos] in WHITESPACE:
            pos += 1
        if pos >= end:
            return None, end
        out: list[str] = []
        quote = ""
        while pos < end:
            c = text[pos]
            if c == "\\" and not self.retain_escape:
                pos = self._escape(text, pos, out, quote)
            elif quote:
                quote = "" if c == quote else quote
                if quote or not self.unquote:
                    out.append(c)
                pos += 1
            elif c in "'\"" and self.unquote:
                quote, pos = c, pos + 1
            elif c in WHITESPACE:
                while pos < end and text[pos] in WHITESPACE:
                    pos += 1
                return "".join(out), pos
            else:
                out.append(c)
                pos += 1
        if quote:
            raise WordError("unbalanced quoting")
        return "".join(out), end

    def _escape(self, text: str, pos: int, out: list[str], quote: str) -> int:
        if pos + 1 >= len(text):
            if self.relax and not quote:
                out.append("\\")
                return pos + 1
            raise WordError("trailing backslash")
        decoded = cunescape_one(text, pos + 1) if self.cunescape else None
        if decoded is not None:
            out.append(decoded[0])
            return pos + 1 + decoded[1]
        if not self.cunescape:
            out.append(text[pos + 1])
        elif self.relax:
            out.append("\\" + text[pos + 1])
        else:
            raise WordError(f"unknown escape sequence \\{text[pos + 1]}")
        return pos + 2

    def split(self, text: str) -> list[str]:
        """Every word (raises WordError where systemd's extract_first_word fails)."""
        words: list[str] = []
        pos = 0
        while True:
            word, pos = self.first(text, pos)
            if word is None:
                return words
            words.append(word)


PLAIN = Words(unquote=False, cunescape=False, retain_escape=True)  # dependency lists


def cunescape_one(text: str, at: int) -> tuple[str, int] | None:
    """One C escape starting at `at` (after the backslash): (character, length), or None."""
    c = text[at : at + 1]
    if c in SIMPLE_ESCAPES:
        return SIMPLE_ESCAPES[c], 1
    if c == "x":
        digits = text[at + 1 : at + 3]
        if len(digits) == 2 and set(digits) <= HEX and digits != "00":
            return _byte(int(digits, 16)), 3
    elif c in ("u", "U"):
        size = 4 if c == "u" else 8
        digits = text[at + 1 : at + 1 + size]
        if len(digits) == size and set(digits) <= HEX:
            value = int(digits, 16)
            if value and (c == "u" or _unichar_is_valid(value)):
                return chr(value) if value < 0x110000 else "\ufffd", 1 + size
    elif c and c in OCTAL:
        digits = text[at : at + 3]
        if len(digits) == 3 and set(digits) <= OCTAL and 0 < int(digits, 8) <= 255:
            return _byte(int(digits, 8)), 3
    return None


def _byte(value: int) -> str:
    return chr(value) if value < 0x80 else chr(0xDC00 + value)


def _unichar_is_valid(value: int) -> bool:
    return not (
        value >= 0x110000
        or 0xD800 <= value <= 0xDFFF
        or 0xFDD0 <= value <= 0xFDEF
        or value & 0xFFFE == 0xFFFE
    )


@dataclass(frozen=True)
class RawCommand:
    """One command of an Exec*= line before specifiers: its prefixes, program word, arguments."""

    prefixes: str
    program: str
    args: tuple[str, ...]

    @property
    def ignore_failure(self) -> bool:
        """The `-` prefix: a failure (even to parse) is not fatal."""
        return "-" in self.prefixes


@dataclass(frozen=True)
class ExecSyntaxError(Exception):
    """A command line systemd stops reading: `fatal` when the unit is refused for it."""

    message: str
    fatal: bool
    commands: tuple[RawCommand, ...] = ()


EXEC_WORDS = Words()


def exec_commands(value: str, warnings: list[str] | None = None) -> list[RawCommand]:
    """The commands of one ExecStart=-style value, split at lone `;` as systemd 252 splits them.

    Raises ExecSyntaxError where config_parse_exec gives up; the commands before it ride along.
    Words systemd reads only by keeping unknown escapes verbatim are noted in `warnings`.
    """
    commands: list[RawCommand] = []
    pos = 0
    notes = warnings if warnings is not None else []
    while True:
        try:
            first, pos = _first_word(value, pos, notes)
        except WordError as exc:  # the first word: systemd keeps what it had, not fatal
            raise ExecSyntaxError(str(exc), False, tuple(commands)) from None
        if first is None:
            return commands
        if first == ";":
            continue
        prefixes, program = _prefixes(first)
        args, pos, more = _arguments(value, pos, "-" in prefixes, commands, notes)
        commands.append(RawCommand(prefixes, program, tuple(args)))
        if not more:
            return commands


def _first_word(value: str, pos: int, notes: list[str]) -> tuple[str | None, int]:
    try:
        return EXEC_WORDS.first(value, pos)
    except WordError:
        word, end = Words(relax=True).first(value, pos)  # extract_first_word_and_warn's retry
        notes.append(f"ignoring unknown escape sequences: {word!r}")
        return word, end


def _arguments(
    value: str, pos: int, ignore: bool, done: list[RawCommand], notes: list[str]
) -> tuple[list[str], int, bool]:
    args: list[str] = []
    end = len(value)
    while pos < end:
        if value[pos] == ";" and (pos + 1 == end or value[pos + 1] in WHITESPACE):
            return args, _skip_space(value, pos + 1), True
        if value.startswith("\\;", pos) and (pos + 2 == end or value[pos + 2] in WHITESPACE):
            args.append(";")
            pos = _skip_space(value, pos + 2)
            continue
        try:
            word, pos = _first_word(value, pos, notes)
        except WordError as exc:
            raise ExecSyntaxError(str(exc), not ignore, tuple(done)) from None
        if word is None:
            break
        args.append(word)
    return args, pos, False


def _skip_space(value: str, pos: int) -> int:
    while pos < len(value) and value[pos] in WHITESPACE:
        pos += 1
    return pos


def _prefixes(word: str) -> tuple[str, str]:
    """Split `-@:+!!` prefixes off the first word, as systemd accepts them (each at most once)."""
    seen = ""
    for index, c in enumerate(word):
        once = c in "-@:" and c not in seen
        privileged = c == "+" and not set(seen) & set("+!")
        no_setuid = c == "!" and "+" not in seen and seen.count("!") < 2
        if once or privileged or no_setuid:
            seen += c
        else:
            return seen, word[index:]
    return seen, ""
